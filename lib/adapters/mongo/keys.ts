import type { Collection } from 'mongodb';
import type { KeyStore, StoredKey } from '../../ports/store.js';
import { decodeKey, type KeyDocument } from './documents.js';

/** API keys: only the hash of each secret is stored. */
export class MongoKeys implements KeyStore {
  constructor(private readonly keys: Collection<KeyDocument>) {}

  async insertKey(key: StoredKey): Promise<void> {
    await this.keys.insertOne({
      _id: key.id,
      name: key.name,
      roles: key.roles,
      hash: key.hash,
      createdAt: new Date(key.createdAt),
      ...(key.expiresAt === undefined ? {} : { expiresAt: new Date(key.expiresAt) }),
    });
  }

  async getKey(id: string): Promise<StoredKey | undefined> {
    const doc = await this.keys.findOne({ _id: id });
    return doc ? decodeKey(doc) : undefined;
  }

  async listKeys(): Promise<StoredKey[]> {
    return (await this.keys.find({}).sort({ createdAt: 1 }).toArray()).map(decodeKey);
  }

  async revokeKey(id: string, at: number): Promise<boolean> {
    const result = await this.keys.updateOne({ _id: id }, { $set: { revokedAt: new Date(at) } });
    return result.matchedCount === 1;
  }
}
