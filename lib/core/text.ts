/**
 * Strings that become stored keys (idempotency keys, business keys, request ids) must be
 * well-formed UTF-16: MongoDB stores UTF-8, where a lone surrogate becomes U+FFFD, so `"k\ud800"`
 * and `"k\udfff"` would be stored as one key and name one case.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function isWellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

export const ILL_FORMED_MESSAGE = 'is not well-formed UTF-16 (it has a lone surrogate)';

/** What a client may give as `X-Request-Id`: short, and safe to log, store and send on. */
const REQUEST_ID = /^[A-Za-z0-9._:/@+=-]{1,128}$/;

/** The given request id when it is a sane one; otherwise undefined, and the caller makes one up. */
export function acceptedRequestId(given: unknown): string | undefined {
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : undefined;
}
