/** The chat room Durable Object (one per room). Implemented by the chat feature. */
import { DurableObject } from "cloudflare:workers";

export class ChatRoom extends DurableObject<Env> {
  override async fetch(): Promise<Response> {
    return new Response(null, { status: 404 });
  }
}
