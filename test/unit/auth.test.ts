import { describe, expect, it } from 'vitest';
import { ANONYMOUS, can, mayReadCase, parseKey, permissionsOf } from '../../lib/core/auth.js';

describe('roles', () => {
  it('give admin everything and the others what the role table of the README lists', () => {
    expect(can(['admin'], 'keys:manage')).toBe(true);
    expect(can(['operator'], 'cases:operate')).toBe(true);
    expect(can(['operator'], 'cases:start')).toBe(false);
    expect(can(['producer'], 'cases:start')).toBe(true);
    expect(can(['producer'], 'cases:read')).toBe(false);
    expect(can(['viewer'], 'cases:read')).toBe(true);
    expect(can(['viewer'], 'cases:operate')).toBe(false);
    expect(can(['viewer'], 'workflows:write')).toBe(false);
  });

  it('add up across several roles', () => {
    expect([...permissionsOf(['producer', 'viewer'])].sort()).toEqual(['cases:read', 'cases:read-own', 'cases:start', 'fleet:read', 'workflows:read']);
  });

  it('let a producer read only its own cases', () => {
    const producer = { id: 'k1', name: 'p', roles: ['producer' as const] };
    expect(mayReadCase(producer, 'k1')).toBe(true);
    expect(mayReadCase(producer, 'k2')).toBe(false);
    expect(mayReadCase(producer, undefined)).toBe(false);
    expect(mayReadCase({ ...producer, roles: ['viewer'] }, 'k2')).toBe(true);
    expect(mayReadCase(ANONYMOUS, 'anything')).toBe(true);
  });
});

describe('parseKey', () => {
  const secret = 'a'.repeat(43);
  it('splits a key into id and secret', () => {
    expect(parseKey(`wfk_ABCDEFGHJKLM_${secret}`)).toEqual({ id: 'ABCDEFGHJKLM', secret });
  });
  it.each(['', 'Bearer x', `wfk_short_${secret}`, `wfk_ABCDEFGHJKLM_${secret}x`, `xfk_ABCDEFGHJKLM_${secret}`])('refuses %j', (text) => {
    expect(parseKey(text)).toBeUndefined();
  });
});
