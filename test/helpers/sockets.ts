/**
 * Sockets a test opened are closed when it finishes, even when an assertion failed halfway: a
 * socket left open keeps its room object busy and its user "online" for the tests that follow.
 *
 * Every socket the test helpers make (chat's `Socket`, the fuzz client) registers itself with
 * `track(ws)`, which hooks the running test's end (`onTestFinished`, vitest's per-test `afterEach`),
 * so no test file has to remember a hook. A socket shared by a file's tests (opened in `beforeAll`)
 * is not tracked: close it in `afterAll` with `closeSocket`.
 */
import { onTestFinished } from "vitest";

/** How long closing waits for the close handshake before giving up on it. */
const CLOSE_WAIT_MS = 2000;
const CLOSING = 2;
const CLOSED = 3;

/** Closes `ws` unless it is closed already, and waits (bounded) for the close to complete. */
export async function closeSocket(ws: WebSocket): Promise<void> {
  if (ws.readyState === CLOSED) return;
  const closed = new Promise<void>((resolve) => ws.addEventListener("close", () => resolve()));
  try {
    if (ws.readyState !== CLOSING) ws.close(1000, "test over");
  } catch {
    return; // it closed meanwhile
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, CLOSE_WAIT_MS);
  });
  try {
    await Promise.race([closed, bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** Registers `ws` to be closed when the running test finishes (passed or failed); returns it. */
export function track(ws: WebSocket): WebSocket {
  try {
    onTestFinished(() => closeSocket(ws));
  } catch (e) {
    throw new Error(
      "a socket opened outside a test (in beforeAll?) is not closed for you: " +
        `make it untracked and close it in afterAll with closeSocket (${(e as Error).message})`,
    );
  }
  return ws;
}
