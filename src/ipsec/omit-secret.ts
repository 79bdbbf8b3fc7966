import { AliyunApiError } from '../aliyun/errors.js';
import { percentEncode } from '../aliyun/percent-encode.js';

const OMITTED = '[omitted]';

/**
 * The cloud's error with every form of `secret` cut out of its words. A refusal may quote the
 * parameter it refused (as sent, percent-encoded as on the wire, or JSON-escaped), and its message
 * goes to the audit, the plan and the logs. The code and the ids are the cloud's own and stay.
 */
export function withSecretOmitted(error: AliyunApiError, secret: string): AliyunApiError {
  if (secret === '') return error;
  // Longest first: an encoded form may hold the secret itself (`%25` in `%2525`), and cutting the
  // shorter one first would leave the rest of the longer behind.
  const forms = [
    secret,
    percentEncode(secret),
    encodeURIComponent(secret),
    JSON.stringify(secret).slice(1, -1),
  ].sort((a, b) => b.length - a.length);
  const omit = (text: string | undefined) =>
    text === undefined ? undefined : forms.reduce((clean, form) => clean.split(form).join(OMITTED), text);
  const message = omit(error.message) as string;
  const recommend = omit(error.recommend);
  if (message === error.message && recommend === error.recommend) return error;
  return new AliyunApiError({
    code: error.code,
    message,
    httpStatus: error.httpStatus,
    requestId: error.requestId,
    hostId: error.hostId,
    recommend,
    retryAfterMs: error.retryAfterMs,
  });
}
