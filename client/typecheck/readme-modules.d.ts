// The parts of the React Native / Expo packages the README's snippets call, declared as those
// packages type them (AsyncStorage 2, NetInfo 11, React Native 0.79, expo-secure-store 14,
// expo-sqlite 15, expo-web-browser 14); installing them here would pull in React Native.
declare module "react-native-get-random-values" {}
declare module "@react-native-async-storage/async-storage" {
  const AsyncStorage: {
    getItem(key: string): Promise<string | null>;
    setItem(key: string, value: string): Promise<void>;
    removeItem(key: string): Promise<void>;
  };
  export default AsyncStorage;
}
declare module "@react-native-community/netinfo" {
  const NetInfo: {
    addEventListener(
      cb: (state: { isConnected: boolean | null; isInternetReachable: boolean | null }) => void,
    ): () => void;
  };
  export default NetInfo;
}
declare module "react-native" {
  type AppStateStatus = "active" | "background" | "inactive" | "unknown" | "extension";
  export const AppState: {
    addEventListener(type: "change", cb: (state: AppStateStatus) => void): { remove(): void };
  };
}
declare module "expo-web-browser" {
  export function openAuthSessionAsync(
    url: string,
    redirectUrl?: string | null,
  ): Promise<{ type: "success"; url: string } | { type: "cancel" | "dismiss" | "opened" | "locked" }>;
}
declare module "expo-secure-store" {
  export function getItemAsync(key: string): Promise<string | null>;
  export function setItemAsync(key: string, value: string): Promise<void>;
  export function deleteItemAsync(key: string): Promise<void>;
}
declare module "expo-sqlite" {
  type Param = string | number | null | boolean | Uint8Array;
  interface SQLiteDatabase {
    execAsync(source: string): Promise<void>;
    getFirstAsync<T>(source: string, ...params: Param[]): Promise<T | null>;
    getAllAsync<T>(source: string, ...params: Param[]): Promise<T[]>;
    runAsync(source: string, ...params: Param[]): Promise<{ lastInsertRowId: number; changes: number }>;
    withTransactionAsync(task: () => Promise<void>): Promise<void>;
  }
  export function openDatabaseAsync(name: string): Promise<SQLiteDatabase>;
}
