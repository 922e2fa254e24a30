// Baseline for chat fan-out: a bare Node `ws` server doing the same work per message as a room
// without storage: parse the frame, give it a seq, serialize once, send to every socket.
// Speaks the same frames as Outpost (ready / message / error). Prints its port on stdout.
import { randomUUID } from "node:crypto";
import { WebSocketServer } from "ws";

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
let seq = 0;

wss.on("connection", (ws) => {
  ws.send(JSON.stringify({ type: "ready", lastSeq: seq, online: [] }));
  ws.on("message", (data) => {
    let f;
    try {
      f = JSON.parse(data.toString());
    } catch {
      ws.send(JSON.stringify({ type: "error", code: "validation_failed", message: "not JSON" }));
      return;
    }
    if (f?.type !== "send" || typeof f.clientId !== "string") {
      ws.send(JSON.stringify({ type: "error", code: "validation_failed", message: "unknown frame" }));
      return;
    }
    const message = {
      id: randomUUID(),
      roomId: "baseline",
      seq: ++seq,
      clientId: f.clientId,
      senderId: "u",
      text: f.text ?? null,
      fileId: null,
      createdAt: new Date().toISOString(),
    };
    const out = JSON.stringify({ type: "message", message });
    for (const c of wss.clients) if (c.readyState === 1) c.send(out);
  });
});

wss.on("listening", () => process.stdout.write(`${wss.address().port}\n`));
