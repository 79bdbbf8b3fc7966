import type { IncomingMessage, ServerResponse } from 'node:http';
import { ACTIONS, API_VERSION, UPDATE_ACTION } from './actions/index.js';
import type { ActionContext } from './actions/types.js';
import { authenticate, type Envelope, readEnvelope, type SimAccessKey } from './auth.js';
import { SimError, simErrors } from './errors.js';
import type { FaultDraw } from './faults.js';
import { expectsBody, readBody, toReceivedRequest } from './http-request.js';
import {
  DEFAULT_HOST_ID,
  newRequestId,
  type ResponseFormat,
  sendError,
  sendProxyPage,
  sendSuccess,
} from './responses.js';
import type { SimState } from './state.js';
import { GARBLED_CODE, OK_CODE, RESET_CODE } from './stats.js';

/**
 * One API call from arrival to answer. The order of everything that can refuse a call:
 *
 *   1. auth: HTTP method (GET/POST), then access key → signature (for V3, also what it covers
 *      and the payload hash) → nonce → timestamp → STS token (auth.ts)
 *   2. action: Version, then the action name
 *   3. throttle: the caller's quota for this action
 *   (the injected latency is waited out here; the call counts as in flight meanwhile)
 *   4. injected failure (500/503) or reset-before (connection destroyed, nothing processed)
 *   5. the action's own checks and effects (actions/update-ipsec-server.ts lists its order)
 *   6. reset-after: processed, applied if it was an apply, then the connection is destroyed
 *      instead of answered — the lost-response case a ClientToken retry must survive.
 *
 * Fault dice are drawn for every call on arrival, before anything can refuse it, so the fault
 * sequence depends only on the order calls arrive in (faults.ts).
 */
export class ApiDispatcher {
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly state: SimState) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    // Most calls (V3, V1 GET) have no body: answer without waiting for an 'end' event.
    if (!expectsBody(req)) {
      this.process(req, res, undefined);
      return;
    }
    readBody(req, (error, body) => {
      if (error) {
        this.state.stats.requests++;
        const refusal = simErrors.invalidParameter('(body)', error.message);
        this.state.stats.countCode(refusal.code);
        sendError(res, newRequestId(), hostIdOf(req), refusal, 'JSON');
        // The rest of an oversized body is not worth reading; the connection goes with it.
        res.once('finish', () => req.destroy());
        return;
      }
      this.process(req, res, body);
    });
  }

  /** Stops answering delayed calls; the server closes their connections. */
  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private process(req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): void {
    const state = this.state;
    const requestId = newRequestId();
    const now = state.clock();
    const hostId = hostIdOf(req);
    state.stats.requests++;
    const received = toReceivedRequest(req, body);
    const envelope = readEnvelope(received, req.headers);
    const isUpdate = envelope.action === UPDATE_ACTION;
    const draw = state.faults.draw(isUpdate, isUpdate && envelope.params.DryRun !== 'true');
    state.stats.countAction(envelope.action ?? '(none)');

    let key: SimAccessKey;
    try {
      // RPC calls are GET or POST; anything else is refused before its signature is looked at.
      if (received.method !== 'GET' && received.method !== 'POST')
        throw simErrors.unsupportedMethod(received.method);
      key = authenticate(envelope, received, req.headers, { keys: state.keys, nonces: state.nonces, now });
    } catch (error) {
      this.answerError(res, requestId, hostId, error, envelope.format);
      return;
    }

    const serverId = isUpdate ? envelope.params.IpsecServerId : undefined;
    let finish = nothingToFinish;
    if (serverId !== undefined) {
      // Without latency to wait out, the call is answered before another one can arrive.
      if (draw.delayMs <= 0) state.inFlight.pass(serverId);
      else {
        state.inFlight.enter(serverId);
        finish = () => state.inFlight.leave(serverId);
      }
    }

    let action: string;
    try {
      action = this.route(envelope, key, now);
    } catch (error) {
      this.answerError(res, requestId, hostId, error, envelope.format);
      finish();
      return;
    }

    const context: ActionContext = { state, key, params: envelope.params, requestId, now, draw };
    if (draw.delayMs <= 0) {
      this.run(res, action, context, hostId, envelope.format, finish);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      // Processing happens after the latency, on the state as it is then.
      context.now = state.clock();
      this.run(res, action, context, hostId, envelope.format, finish);
    }, draw.delayMs);
    this.timers.add(timer);
    // A closed connection during the wait still ends the call's time in flight.
    res.once('close', () => {
      if (this.timers.delete(timer)) {
        clearTimeout(timer);
        finish();
      }
    });
  }

  /** Version, action and quota; returns the action name. */
  private route(envelope: Envelope, key: SimAccessKey, now: number): string {
    if (envelope.version !== API_VERSION) {
      throw envelope.version === undefined
        ? simErrors.missingCommonParameter('Version')
        : simErrors.invalidVersion(envelope.version);
    }
    const action = envelope.action;
    if (action === undefined || !ACTIONS.has(action)) throw simErrors.actionNotFound();
    const waitMs = this.state.quotas.admit(key.accessKeyId, action, now);
    if (waitMs > 0) throw simErrors.throttled(waitMs);
    return action;
  }

  private run(
    res: ServerResponse,
    action: string,
    context: ActionContext,
    hostId: string,
    format: ResponseFormat,
    finish: () => void,
  ): void {
    const draw: FaultDraw = context.draw;
    try {
      if (this.closed || res.destroyed) return;
      if (draw.failure === 'InternalError') throw simErrors.internalError();
      if (draw.failure === 'ServiceUnavailable') throw simErrors.serviceUnavailable();
      if (draw.reset === 'before') {
        this.reset(res);
        return;
      }
      const handler = ACTIONS.get(action);
      if (!handler) throw simErrors.actionNotFound();
      const result = handler(context);
      if (draw.reset === 'after') {
        this.reset(res);
        return;
      }
      if (draw.garbled) {
        this.garble(res);
        return;
      }
      if (result instanceof SimError) {
        this.answerError(res, context.requestId, hostId, result, format);
        return;
      }
      this.state.stats.countCode(OK_CODE);
      sendSuccess(res, result.requestId, action, result.body, format, result.json);
    } catch (error) {
      if (draw.reset === 'after' && error instanceof SimError) this.reset(res);
      else if (draw.garbled && error instanceof SimError) this.garble(res);
      else this.answerError(res, context.requestId, hostId, error, format);
    } finally {
      finish();
    }
  }

  private reset(res: ServerResponse): void {
    this.state.stats.countCode(RESET_CODE);
    const socket = res.socket;
    // An RST, as a load balancer dropping the call would send, rather than an orderly close.
    if (socket && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
    else res.destroy();
  }

  private garble(res: ServerResponse): void {
    this.state.stats.countCode(GARBLED_CODE);
    sendProxyPage(res);
  }

  private answerError(
    res: ServerResponse,
    requestId: string,
    hostId: string,
    error: unknown,
    format: ResponseFormat,
  ): void {
    let answer: SimError;
    if (error instanceof SimError) {
      answer = error;
    } else {
      // A bug in the simulator: answer as the cloud would, and say so where it can be seen.
      this.state.logger?.error({ err: error }, 'simulator failed to process a call');
      answer = simErrors.internalError();
    }
    this.state.stats.countCode(answer.code);
    sendError(res, requestId, hostId, answer, format);
  }
}

function nothingToFinish(): void {}

function hostIdOf(req: IncomingMessage): string {
  return req.headers.host ?? DEFAULT_HOST_ID;
}
