// Types for chatstream/react: useChatStream and the reducer it folds events with.
import type { ChatstreamClient, Citation, EndEvent, ProgressEvent, StreamEvent, Usage } from "./chatstream.js";

/**
 * idle: nothing asked yet (or reset). streaming: events flow. reconnecting: the connection
 * dropped and the client is resuming with Last-Event-ID. done, cancelled (stop() or another
 * client's cancel) and error are final until the next send() or resume().
 */
export type ChatStreamStatus = "idle" | "streaming" | "reconnecting" | "done" | "error" | "cancelled";

/** One progress step as the server reported it last. */
export type ChatStreamStep = ProgressEvent["progress"];

export interface ChatStreamFailure {
  message: string;
  /** The contract's code: `not_found`, `rate_limited`, `job_stalled`, `network`... */
  code: string;
  /** The HTTP status of a refused request; 0 for an `error` event or a network failure. */
  status: number;
  /** Worth a resume(): a network failure, a cut stream, 429 or 5xx, or `unavailable`. */
  retryable: boolean;
}

export interface ChatStreamState {
  status: ChatStreamStatus;
  /** One entry per step name, in the order the steps first came. */
  steps: ChatStreamStep[];
  /** The answer so far; on `end`, the whole answer. */
  text: string;
  /** The sources of the answer, from its `end` event. */
  citations: Citation[];
  error: ChatStreamFailure | null;
  jobId: string | null;
  sessionId: string | null;
  messageId: string | null;
  /** The seq of the last event shown: where resume() starts from. */
  lastEventId: number;
  finishReason: EndEvent["finishReason"] | null;
  usage: Usage | null;
  /** The job's place in the queue while it waits, from the heartbeats. */
  queuePosition: number | null;
  /** While status is "reconnecting" after a drop: the client's next try. */
  reconnect: { attempt: number; delayMs: number; reason: string } | null;
}

export interface SendOptions {
  /** Continue this session; without it (and without a project) a session is created first. */
  sessionId?: string;
  /** Answer from this project's documents (`POST /api/v1/projects/{project}/chat-stream`). */
  project?: string;
  simpleLanguage?: boolean;
  /** `rag` or `echo`; the server's default without it. */
  pipeline?: string;
  /** The title of a session created for this question; its first 80 characters by default. */
  title?: string;
}

export interface UseChatStream extends ChatStreamState {
  /** Ask; resolves when the answer's stream ends, whatever the outcome (see `status`). */
  send(content: string, options?: SendOptions): Promise<void>;
  /**
   * Without a jobId: follow the last answer again from `lastEventId` (after an error whose
   * `retryable` is true). With one: attach to that job, from its first event by default.
   */
  resume(jobId?: string, options?: { lastEventId?: number }): Promise<void>;
  /** Cancel the job on the server; the answer ends with status "cancelled". */
  stop(): Promise<void>;
  /** Close the connection (the job goes on) and go back to "idle". */
  reset(): void;
}

export function useChatStream(
  client: ChatstreamClient,
  options?: { onEvent?: (event: StreamEvent) => void },
): UseChatStream;

export type ChatStreamAction =
  | { type: "begin"; keep?: boolean }
  | {
      type: "event";
      event: StreamEvent;
      stream?: { jobId: string | null; sessionId: string | null; lastEventId: number };
    }
  | { type: "failed"; error: unknown }
  | { type: "clear" };

export const initialChatStreamState: Readonly<ChatStreamState>;

export function chatStreamReducer(state: ChatStreamState, action: ChatStreamAction): ChatStreamState;
