/**
 * The cursor of a case listing, the same for every store adapter: the last case id of the page,
 * base64url. A cursor that does not decode to a case id is ignored (the first page).
 */
export function encodeCursor(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string | undefined {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  return /^[0-9a-f-]{36}$/.test(id) ? id : undefined;
}
