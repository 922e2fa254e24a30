// @vitest-environment jsdom
import { act, renderHook, waitFor } from "@testing-library/react";
import { createElement, type ReactNode } from "react";
import { describe, expect, it } from "vitest";
import { OutpostProvider, useRoom, useUpload, useUser, useWatch } from "../src/react.js";
import { client, email, PASSWORD, signedIn } from "./helpers.js";

describe("React bindings (React Testing Library, the real Worker)", () => {
  it("useUser follows sign-in and sign-out", async () => {
    const c = client();
    const wrapper = ({ children }: { children?: ReactNode }) => createElement(OutpostProvider, { client: c }, children);
    const { result } = renderHook(() => useUser(), { wrapper });
    expect(result.current).toBeNull();
    const mail = email("react");
    await act(() => c.auth.signUp({ email: mail, password: PASSWORD }));
    await waitFor(() => expect(result.current?.email).toBe(mail));
    await act(() => c.auth.signOut());
    await waitFor(() => expect(result.current).toBeNull());
    c.close();
  });

  it("useWatch is live over the local store: a create shows at once, offline too", async () => {
    const c = await signedIn();
    const notes = c.collection("notes");
    const { result } = renderHook(() => useWatch(notes, { sort: "title" }));
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.items).toEqual([]);
    await act(async () => void (await notes.create({ title: "b" })));
    c.setOnline(false);
    await act(async () => void (await notes.create({ title: "a" })));
    await waitFor(() => expect(result.current.items.map((n) => n.title)).toEqual(["a", "b"]));
    const offline = result.current.items[0]!;
    expect(result.current.hasPendingWrites(offline.id)).toBe(true);
    c.setOnline(true);
    await act(() => c.flush());
    await waitFor(() => expect(result.current.hasPendingWrites(offline.id)).toBe(false));
    c.close();
  });

  it("useRoom connects, collects messages and typing; useUpload reports progress and the file", async () => {
    const a = await signedIn();
    const b = await signedIn();
    const { id } = await a.rooms.create({ memberIds: [b.user!.id] });
    const { result, unmount } = renderHook(() => useRoom(id, { afterSeq: 0 }, a));
    await waitFor(() => expect(result.current.ready).toBe(true));
    const rb = b.room(id);
    const bReady = new Promise<void>((ok) => rb.on("ready", () => ok()));
    rb.connect({ afterSeq: 0 });
    await bReady;
    rb.typing();
    await waitFor(() => expect(result.current.typing).toEqual([b.user!.id]));
    await rb.send({ text: "from b" });
    await act(async () => void (await result.current.send("from a")));
    await waitFor(() => expect(result.current.messages.map((m) => m.text)).toEqual(["from b", "from a"]));
    unmount();

    const up = renderHook(() => useUpload(a));
    const bytes = new TextEncoder().encode("hello react");
    await act(async () => void (await up.result.current.upload(bytes, { name: "hello.txt" })));
    expect(up.result.current.file?.name).toBe("hello.txt");
    expect(up.result.current.progress).toEqual({ sent: bytes.byteLength, total: bytes.byteLength });
    expect(up.result.current.uploading).toBe(false);
    a.close();
    b.close();
  });
});
