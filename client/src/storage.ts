/**
 * Where the SDK keeps what must survive a restart (the session, the queue of pending writes, chat
 * sends not yet acknowledged, resumable-upload URLs, the push token). Any async key-value store
 * fits: `@react-native-async-storage/async-storage` as is, expo-secure-store and localStorage
 * through the adapters below (see README).
 */
export interface KeyValueStorage {
  getItem(key: string): Promise<string | null>;
  setItem(key: string, value: string): Promise<void>;
  removeItem(key: string): Promise<void>;
}

/** The default: kept in memory, gone when the process ends. */
export function memoryStorage(): KeyValueStorage {
  const m = new Map<string, string>();
  return {
    getItem: async (k) => m.get(k) ?? null,
    setItem: async (k, v) => void m.set(k, v),
    removeItem: async (k) => void m.delete(k),
  };
}

/** The synchronous Web Storage API (`localStorage`) as an async store. */
export function webStorage(s: {
  getItem(k: string): string | null;
  setItem(k: string, v: string): void;
  removeItem(k: string): void;
}): KeyValueStorage {
  return {
    getItem: async (k) => s.getItem(k),
    setItem: async (k, v) => s.setItem(k, v),
    removeItem: async (k) => s.removeItem(k),
  };
}

/** Reads and parses a JSON value; a missing or unreadable one is `fallback`. */
export async function readJson<T>(s: KeyValueStorage, key: string, fallback: T): Promise<T> {
  try {
    const raw = await s.getItem(key);
    return raw === null ? fallback : (JSON.parse(raw) as T);
  } catch {
    return fallback;
  }
}

/** Writes a JSON value; `undefined` removes the key. */
export function writeJson(s: KeyValueStorage, key: string, value: unknown): Promise<void> {
  return value === undefined ? s.removeItem(key) : s.setItem(key, JSON.stringify(value));
}
