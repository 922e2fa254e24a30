/**
 * React bindings (`@outpost/client/react`): hooks over one client, no Suspense. Give the client
 * to `<OutpostProvider client={outpost}>` once, or pass it to each hook. `react` is a peer
 * dependency of this entry only; the core never imports it.
 */
import { createContext, createElement, type ReactNode, useCallback, useContext, useEffect, useState } from "react";
import type { Room } from "./chat.js";
import type { OutpostClient } from "./client.js";
import type { Collection } from "./collections.js";
import type { OutpostError } from "./errors.js";
import { toError } from "./errors.js";
import type { UploadInput, UploadOptions } from "./files.js";
import type { Snapshot } from "./sync.js";
import type { CollectionMap, Fields, FileInfo, Message, RecordOf, User, WatchQuery } from "./types.js";

// biome-ignore lint/suspicious/noExplicitAny: the provider holds a client of any collection map
type AnyClient = OutpostClient<any>;
const Ctx = createContext<AnyClient | null>(null);

/** Makes `client` the one the hooks below use. */
export function OutpostProvider(props: { client: AnyClient; children?: ReactNode }): ReactNode {
  return createElement(Ctx.Provider, { value: props.client }, props.children);
}

/** The client of the nearest `OutpostProvider` (or the one given). */
export function useOutpost<C extends CollectionMap = CollectionMap>(client?: OutpostClient<C>): OutpostClient<C> {
  const fromContext = useContext(Ctx);
  const c = client ?? fromContext;
  if (!c) throw new Error("useOutpost: wrap the app in <OutpostProvider client={...}> or pass the client");
  return c as OutpostClient<C>;
}

/** The signed-in user (null when signed out); re-renders on sign-in, sign-out and user updates. */
export function useUser(client?: AnyClient): User | null {
  const c = useOutpost(client);
  const [user, setUser] = useState<User | null>(c.user);
  useEffect(() => c.auth.onAuthStateChange((_e, s) => setUser(s?.user ?? null)), [c]);
  return user;
}

export interface WatchState<R> {
  /** The local store plus pending writes, live. */
  items: R[];
  hasPendingWrites(id: string): boolean;
  /** Caught up with the server once since the watch began. */
  synced: boolean;
  /** Why the watch stopped for good (`removed_from_team`: out of the watched team), else null. */
  stopped: OutpostError | null;
  /** True until the first snapshot arrived. */
  loading: boolean;
}

/**
 * A live query (offline-aware: the local store plus pending writes, kept in sync with the server
 * while mounted). Without a query: the whole collection.
 */
export function useWatch<F extends Fields, C extends Fields>(
  collection: Collection<F, C>,
  query?: WatchQuery<F>,
): WatchState<RecordOf<F>> {
  const [snap, setSnap] = useState<Snapshot<RecordOf<F>> | null>(null);
  const key = JSON.stringify(query ?? {});
  // biome-ignore lint/correctness/useExhaustiveDependencies: the query is compared by value (key)
  useEffect(() => collection.watch(query ?? {}, setSnap), [collection, key]);
  return snap
    ? { ...snap, loading: false }
    : { items: [], hasPendingWrites: () => false, synced: false, stopped: null, loading: true };
}

/** `useWatch` under the name other SDKs use. */
export const useQuery = useWatch;

export interface RoomState {
  room: Room;
  /** Every message delivered since mount, in seq order (deleted ones removed). */
  messages: Message[];
  /** Users typing now (for 4 s after their last typing event). */
  typing: string[];
  online: string[];
  /** The socket is connected and the server confirmed it. */
  ready: boolean;
  /** The last error: a refused send, or why the room stopped. */
  error: OutpostError | null;
  send(text: string): Promise<Message>;
}

/** A chat room while mounted: connects (from `afterSeq` if given), collects messages, typing and presence. */
export function useRoom(roomOrId: Room | string, o: { afterSeq?: number } = {}, client?: AnyClient): RoomState {
  const c = useOutpost(client);
  const room = typeof roomOrId === "string" ? c.room(roomOrId) : roomOrId;
  const [s, set] = useState<Omit<RoomState, "room" | "send">>({
    messages: [],
    typing: [],
    online: [],
    ready: false,
    error: null,
  });
  useEffect(() => {
    const timers = new Map<string, ReturnType<typeof setTimeout>>();
    const offs = [
      room.on("message", (m) => set((p) => ({ ...p, messages: [...p.messages, m] }))),
      room.on("deleted", (seq) => set((p) => ({ ...p, messages: p.messages.filter((m) => m.seq !== seq) }))),
      room.on("ready", (r) => set((p) => ({ ...p, ready: true, online: r.online }))),
      room.on("presence", ({ userId, online }) =>
        set((p) => ({
          ...p,
          online: online ? [...new Set([...p.online, userId])] : p.online.filter((u) => u !== userId),
        })),
      ),
      room.on("typing", (userId) => {
        clearTimeout(timers.get(userId));
        timers.set(
          userId,
          setTimeout(() => set((p) => ({ ...p, typing: p.typing.filter((u) => u !== userId) })), 4000),
        );
        set((p) => (p.typing.includes(userId) ? p : { ...p, typing: [...p.typing, userId] }));
      }),
      room.on("error", (e) => set((p) => ({ ...p, error: e }))),
      room.on("stopped", (e) => set((p) => ({ ...p, ready: false, error: e }))),
    ];
    room.connect(o.afterSeq !== undefined ? { afterSeq: o.afterSeq } : {});
    return () => {
      for (const off of offs) off();
      for (const t of timers.values()) clearTimeout(t);
      room.disconnect();
    };
  }, [room, o.afterSeq]);
  const send = useCallback((text: string) => room.send({ text }), [room]);
  return { ...s, room, send };
}

export interface UploadState {
  upload(input: UploadInput, o?: UploadOptions): Promise<FileInfo>;
  /** Bytes sent and total of the upload under way (null before the first). */
  progress: { sent: number; total: number } | null;
  uploading: boolean;
  file: FileInfo | null;
  error: OutpostError | null;
}

/** Uploads with progress, the stored file and the error as state. */
export function useUpload(client?: AnyClient): UploadState {
  const c = useOutpost(client);
  const [s, set] = useState<Omit<UploadState, "upload">>({ progress: null, uploading: false, file: null, error: null });
  const upload = useCallback(
    async (input: UploadInput, o: UploadOptions = {}) => {
      set({ progress: null, uploading: true, file: null, error: null });
      try {
        const file = await c.files.upload(input, {
          ...o,
          onProgress: (sent, total) => {
            set((p) => ({ ...p, progress: { sent, total } }));
            o.onProgress?.(sent, total);
          },
        });
        set((p) => ({ ...p, uploading: false, file }));
        return file;
      } catch (e) {
        set((p) => ({ ...p, uploading: false, error: toError(e) }));
        throw e;
      }
    },
    [c],
  );
  return { ...s, upload };
}
