# syntax=docker/dockerfile:1
# ipsec-fleet: one image for every process (serve, worker, sim, the CLI); the command picks one.

# --- build: every dependency, then tsc into dist/ ---------------------------------------------
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `prepare` would build before the sources are here: scripts off, the build runs below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workers ./workers
COPY bench ./bench
RUN npm run build

# --- runtime: production dependencies, dist/ and the Lua scripts, as a non-root user ----------
FROM node:20-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# Read at run time from <root>/src/orchestrator/lua (src/orchestrator/scripts.ts); package.json's
# `files` ships the same directory in the npm package (test/e2e/package-files.test.ts).
COPY src/orchestrator/lua ./src/orchestrator/lua
# The official image's unprivileged user (uid 1000).
USER node
EXPOSE 8080
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["--help"]
