/**
 * The promise, or a rejection after `ms`: for answers a caller must not wait on for ever (a
 * readiness probe, a metrics scrape) while Redis does not answer. The timer is cleared either way.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
