// Types for chatstream.js, the chatstream client for front ends. The events follow the
// contract's "Events" section; `seq` is the SSE id the client read the event under.

/** One cited passage of a project's documents, as the `end` event and a stored answer list them. */
export interface Citation {
  /** The number the answer's `[n]` markers use. */
  id: number;
  project: string;
  documentId: string;
  /** The document's name, as it was uploaded or ingested. */
  document: string;
  chunkId: string;
  /** The retrieval score of the passage. */
  score: number;
  /** The passage's sentences the answer rests on, verbatim. */
  quotes: string[];
}

export interface Usage {
  tokens: number;
  ttftMs: number | null;
  durationMs: number;
}

export type ProgressStep =
  | "start"
  | "context"
  | "analyzing"
  | "planning"
  | "validation"
  | "execution"
  | "memory"
  | "completion";

interface Sequenced {
  /** The event's SSE id (its seq); absent on heartbeats and snapshots. */
  seq?: number;
}

export interface StartEvent extends Sequenced {
  type: "start";
  jobId: string;
  sessionId: string;
  messageId: string;
}

export interface ProgressEvent extends Sequenced {
  type: "progress";
  progress: {
    step: ProgressStep | string;
    message: string;
    details: unknown;
    timestamp: string;
    metadata: Record<string, unknown>;
  };
}

export interface TokenEvent extends Sequenced {
  type: "token";
  content: string;
  delta: string;
  done: false;
}

export interface HeartbeatEvent extends Sequenced {
  type: "heartbeat";
  timestamp: string;
  phase: "queued" | "running";
  queuePosition?: number;
}

export interface ResetEvent extends Sequenced {
  type: "reset";
  reason: string;
}

export interface EndEvent extends Sequenced {
  type: "end";
  messageId: string;
  delta: "";
  done: true;
  finishReason: "stop" | "cancelled" | "length";
  content: string;
  citations: Citation[];
  usage: Usage;
}

export interface ErrorEvent extends Sequenced {
  type: "error";
  error: string;
  code: string;
}

export interface Session {
  id: string;
  title: string;
  userId: string;
  createdAt: string;
  updatedAt: string;
  messageCount: number;
}

export interface Message {
  id: string;
  role: "user" | "assistant" | string;
  content: string;
  status: "complete" | "streaming" | "cancelled" | "error";
  createdAt: string;
  jobId?: string;
  citations?: Citation[];
  usage?: Usage;
}

export interface ProjectDocument {
  id: string;
  project: string;
  name: string;
  format: "markdown" | "text" | "html";
  chunks: number;
  chars: number;
  createdAt: string;
}

export interface SnapshotEvent {
  type: "snapshot";
  session: Session;
  messages: Message[];
}

/** Emitted by the client, not the server: a resume is about to be tried after `delayMs`. */
export interface ReconnectingEvent {
  type: "reconnecting";
  attempt: number;
  delayMs: number;
  /** Why: "network", "stream_cut", "heartbeat_timeout", "slow_client" or an HTTP error code. */
  reason: string;
  lastEventId: number;
}

/** Emitted by the client once events flow again after a resume. */
export interface ReconnectedEvent {
  type: "reconnected";
  attempt: number;
}

export type ServerEvent =
  | StartEvent
  | ProgressEvent
  | TokenEvent
  | HeartbeatEvent
  | ResetEvent
  | EndEvent
  | ErrorEvent
  | SnapshotEvent;

export type StreamEvent = ServerEvent | ReconnectingEvent | ReconnectedEvent;

export class ChatstreamError extends Error {
  /** The HTTP status, or 0 for a network failure or a cut stream. */
  readonly status: number;
  /** The contract's error code (`unauthorized`, `not_found`, `rate_limited`...). */
  readonly code: string;
  readonly details: unknown;
  readonly retryAfterMs: number | null;
  readonly retryable: boolean;
  constructor(
    message: string,
    options?: { status?: number; code?: string; details?: unknown; retryAfterMs?: number | null },
  );
}

export interface SseMessage {
  id: string;
  hasId: boolean;
  event: string;
  data: string;
}

export class SseParser {
  constructor(handlers?: {
    onMessage?: (message: SseMessage) => void;
    onComment?: (text: string) => void;
    onRetry?: (ms: number) => void;
  });
  lastEventId: string;
  push(text: string): void;
  end(): void;
}

export interface BackoffOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  random?: () => number;
}

export function backoffDelayMs(attempt: number, options?: BackoffOptions): number;

export interface StreamOptions extends BackoffOptions {
  /** Aborting it closes the connection (and, with cancelOnAbort, cancels the job). */
  signal?: AbortSignal;
  cancelOnAbort?: boolean;
  /** A connection with no bytes for this long is treated as dropped. */
  heartbeatTimeoutMs?: number;
  maxAttempts?: number;
}

export interface ClientOptions extends BackoffOptions {
  baseUrl?: string;
  apiKey?: string | null;
  getToken?: () => string | null | Promise<string | null>;
  fetch?: typeof fetch;
  heartbeatTimeoutMs?: number;
  maxAttempts?: number;
}

type Listener<T extends StreamEvent["type"]> = (event: Extract<StreamEvent, { type: T }>) => void;

export class ChatStream implements AsyncIterable<StreamEvent> {
  jobId: string | null;
  sessionId: string | null;
  lastEventId: number;
  on<T extends StreamEvent["type"]>(type: T, listener: Listener<T>): this;
  on(type: "*", listener: (event: StreamEvent) => void): this;
  /** Reads the whole stream, calling the listeners; resolves to the last event. */
  run(): Promise<EndEvent | ErrorEvent | null>;
  /** Asks the server to stop the job; the stream then ends with finishReason "cancelled". */
  cancel(): Promise<void>;
  abort(reason?: unknown): void;
  [Symbol.asyncIterator](): AsyncIterator<StreamEvent>;
}

export class ChatstreamClient {
  constructor(options?: ClientOptions);
  request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    options?: { signal?: AbortSignal },
  ): Promise<T>;
  createSession(options?: { title?: string; id?: string }): Promise<Session>;
  listSessions(options?: {
    limit?: number;
    cursor?: string;
  }): Promise<{ sessions: Session[]; nextCursor: string | null }>;
  getSession(id: string): Promise<Session>;
  renameSession(id: string, title: string): Promise<Session>;
  deleteSession(id: string): Promise<null>;
  listMessages(sessionId: string): Promise<Message[]>;
  cancel(jobId: string): Promise<void>;
  sendMessage(
    sessionId: string,
    content: string,
    options?: StreamOptions & { simpleLanguage?: boolean; pipeline?: string },
  ): ChatStream;
  projectChat(
    project: string,
    message: string,
    options?: StreamOptions & { sessionId?: string; simpleLanguage?: boolean; pipeline?: string },
  ): ChatStream;
  listDocuments(project: string): Promise<ProjectDocument[]>;
  addDocument(
    project: string,
    document: { name: string; content: string; format?: ProjectDocument["format"] },
  ): Promise<ProjectDocument>;
  deleteDocument(project: string, documentId: string): Promise<null>;
  stream(path: string, body: unknown, options?: StreamOptions): ChatStream;
  resume(jobId: string, options?: StreamOptions & { lastEventId?: number | string }): ChatStream;
}
