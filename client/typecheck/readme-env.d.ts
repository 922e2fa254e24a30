// What the README's snippets take from their surroundings: the app's own variables (the
// packages they import are declared in readme-modules.d.ts).
import type { Collection, createClient as create, FileInfo, Message, OutpostClient } from "@outpost/client";
import type { Collections, Note as NoteRecord } from "./readme/outpost-types";

declare global {
  // The app's client and its surroundings.
  const outpost: OutpostClient<Collections>;
  const createClient: typeof create;
  const AsyncStorage: typeof import("@react-native-async-storage/async-storage").default;
  const notes: Collection<Collections["notes"]["fields"], Collections["notes"]["create"]>;
  const url: string;
  const email: string;
  const password: string;
  const id: string;
  const idToken: string;
  const nonce: string;
  /** expo-apple-authentication's credential.authorizationCode. */
  const authorizationCode: string;
  /** The 6-digit code of a sign-in mail. */
  const code: string;
  const token: string;
  const currentPassword: string;
  const newPassword: string;
  const seq: number;
  const lastSeqIHave: number;
  const bobId: string;
  const userId: string;
  const codeFromTheMail: string;
  const expoPushToken: string;
  const note: { id: string };
  const blobOrBytes: Blob | Uint8Array;
  /** expo-image-picker's ImagePickerAsset (the fields the README reads). */
  const asset: { uri: string; fileName?: string | null; mimeType?: string; fileSize?: number };
  // App integrity: the app's native module (App Attest) and its stored key id.
  const isIOS: boolean;
  const debugToken: string | null;
  const appAttest: {
    keyId(): Promise<{ keyId: string; attested: boolean }>;
    attestKey(keyId: string, challenge: string): Promise<string>;
    generateAssertion(keyId: string, challenge: string): Promise<string>;
  };
  function classicIntegrityToken(nonce: string): Promise<string>;
  function onProgress(sent: number, total: number): void;
  function render(page: unknown): void;
  function append(m: Message): void;
  function show(f: FileInfo): void;
  type Note = NoteRecord;
  // React.
  function useState<T>(initial: T): [T, (next: T) => void];
  function useEffect(effect: () => undefined | (() => void), deps?: readonly unknown[]): void;
}
