import { describe, expect, it } from 'vitest';
import { InputInvalidError } from '../../lib/core/errors.js';
import { canonicalJson, idempotencyWindowMs, parseStartRequest, PAYLOAD_LIMITS } from '../../lib/core/requests.js';

function issuesOf(data: unknown): string[] {
  try {
    parseStartRequest(data);
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(InputInvalidError);
    return (error as InputInvalidError).issues.map((issue) => `${issue.path}: ${issue.message}`);
  }
}

describe('parseStartRequest', () => {
  it('accepts the documented shape', () => {
    expect(parseStartRequest({ workflow: 'order', version: 2, input: { a: 1 }, idempotencyKey: 'k-1' })).toEqual({
      workflow: 'order',
      version: 2,
      input: { a: 1 },
      idempotencyKey: 'k-1',
    });
    expect(parseStartRequest({ workflow: 'order' })).toEqual({ workflow: 'order' });
  });

  it('takes an idempotency window in milliseconds or as text, with a key, up to 365 days', () => {
    expect(idempotencyWindowMs(parseStartRequest({ workflow: 'w', idempotencyKey: 'k', idempotencyWindow: '1h30m' }))).toBe(5_400_000);
    expect(idempotencyWindowMs(parseStartRequest({ workflow: 'w', idempotencyKey: 'k', idempotencyWindow: 250 }))).toBe(250);
    expect(idempotencyWindowMs(parseStartRequest({ workflow: 'w', idempotencyKey: 'k' }))).toBeUndefined();
    expect(issuesOf({ workflow: 'w', idempotencyWindow: '1h' })).toEqual(['idempotencyWindow: is the lifetime of an idempotency key: send an idempotencyKey with it']);
    expect(issuesOf({ workflow: 'w', idempotencyKey: 'k', idempotencyWindow: '0s' })).toEqual(['idempotencyWindow: "0s" is not a window: give at least 1ms']);
    expect(issuesOf({ workflow: 'w', idempotencyKey: 'k', idempotencyWindow: '366d' })).toEqual(['idempotencyWindow: must be at most 365d (31536000000 ms)']);
    expect(issuesOf({ workflow: 'w', idempotencyKey: 'k', idempotencyWindow: 'an hour' })).toEqual([expect.stringMatching(/^idempotencyWindow: "an hour" is not a duration/)]);
    expect(issuesOf({ workflow: 'w', idempotencyKey: 'k', idempotencyWindow: 0 })).toEqual(['idempotencyWindow: 0 is not a window: give at least 1ms']);
    expect(issuesOf({ workflow: 'w', idempotencyKey: 'k', idempotencyWindow: -5 })).toEqual([expect.stringMatching(/^idempotencyWindow: -5 is not a duration/)]);
  });

  it('names each bad field', () => {
    expect(issuesOf({ workflow: 7, version: 0, input: [1], extra: true })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^workflow: /), expect.stringMatching(/^version: /), expect.stringMatching(/^input: /), 'extra: unknown field "extra"']),
    );
    expect(issuesOf('start')).toEqual([': expected object']);
    expect(issuesOf({})).toEqual([expect.stringMatching(/^workflow: /)]);
  });

  it('refuses inputs nested too deep or too large', () => {
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < PAYLOAD_LIMITS.maxDepth + 5; i++) {
      deep.next = {};
      deep = deep.next as Record<string, unknown>;
    }
    expect(issuesOf({ workflow: 'w', input: root })).toEqual([`input: nests deeper than ${PAYLOAD_LIMITS.maxDepth} levels`]);
    expect(issuesOf({ workflow: 'w', input: { blob: 'x'.repeat(PAYLOAD_LIMITS.maxInputBytes) } })).toEqual([`input: is larger than ${PAYLOAD_LIMITS.maxInputBytes} bytes as JSON`]);
  });
});

describe('canonicalJson', () => {
  it('gives equal text for equal values whatever the key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
    expect(canonicalJson({ a: 1, b: undefined })).toBe(canonicalJson({ a: 1 }));
  });
});
