// The declarations as a TypeScript front end uses them, checked by `tsc -p test/types`: the
// package's own names (its `exports` map), the contract's citation shape, the hook's state.
import { ChatstreamClient, type Citation, type EndEvent, type StreamEvent } from "chatstream";
import { chatStreamReducer, initialChatStreamState, type UseChatStream } from "chatstream/react";

const client = new ChatstreamClient({ baseUrl: "http://127.0.0.1:8080", apiKey: "k1" });

// The shape the `end` event and a stored message carry (docs/api.md).
const cited: Citation = {
  id: 1,
  project: "handbook",
  documentId: "d-1",
  document: "travel.md",
  chunkId: "c-1",
  score: 0.42,
  quotes: ["Trains leave every hour."],
};
// @ts-expect-error the old guess at a citation is gone
cited.title;

export function sourcesOf(event: EndEvent): string[] {
  return event.citations.map((c) => `[${c.id}] ${c.document}: ${c.quotes.join(" … ")}`);
}

export async function ask(): Promise<string> {
  const stream = client.projectChat("handbook", "When do trains leave?", { simpleLanguage: true });
  let text = "";
  for await (const event of stream satisfies AsyncIterable<StreamEvent>) {
    if (event.type === "token") text += event.content;
    if (event.type === "end") return event.content + sourcesOf(event).join("\n");
  }
  const documents = await client.listDocuments("handbook");
  return text + documents.map((d) => d.name).join();
}

export function render(chat: UseChatStream): string {
  if (chat.status === "error") return chat.error?.code ?? "";
  // @ts-expect-error a status the hook never has
  if (chat.status === "finished") return "";
  const steps = chat.steps.map((s) => s.step).join(" → ");
  return `${steps}\n${chat.text}\n${chat.citations.map((c) => c.document).join(", ")}`;
}

const next = chatStreamReducer(initialChatStreamState, { type: "begin" });
export const streaming: boolean = next.status === "streaming";
declare const chat: UseChatStream;
void chat.send("Again?", { sessionId: chat.sessionId ?? undefined, project: "handbook" });
void chat.resume();
void chat.stop();
