/** The jobs chat produces for other features to handle (the push feature handles `chat.message`). */

/** A chat message was stored; push it to `recipients` (members with no open socket in the room, never the sender). */
export interface ChatMessageJob {
  type: "chat.message";
  roomId: string;
  roomName: string | null;
  roomKind: "direct" | "group";
  seq: number;
  messageId: string;
  senderId: string;
  senderName: string | null;
  text: string | null;
  hasFile: boolean;
  recipients: string[];
}
