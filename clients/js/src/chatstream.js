// chatstream.js: a dependency-free ES module for chatstream front ends.
//
// It reads Server-Sent Events over fetch's ReadableStream rather than a native EventSource,
// because EventSource can neither POST a message nor send an Authorization header. Its parser,
// sse.js beside it, follows the WHATWG SSE rules (CRLF, LF or CR; comments; multi-line data);
// a dropped or silent connection resumes with Last-Event-ID after a jittered backoff, and the
// response body is read exactly once (no Response.clone(), which buffers the whole stream).

import { SseParser } from "./sse.js";

export { SseParser };

const TERMINAL_TYPES = new Set(["end", "error"]);
const STREAMS_PATH = "/api/v1/streams/";

const projectPath = (project) => `/api/v1/projects/${encodeURIComponent(project)}`;

/** An HTTP or protocol failure with the contract's error code (`unauthorized`, `not_found`...). */
export class ChatstreamError extends Error {
  constructor(message, { status = 0, code = "network", details = null, retryAfterMs = null } = {}) {
    super(message);
    this.name = "ChatstreamError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfterMs = retryAfterMs;
  }

  /** Worth retrying: the network, a cut stream, 429, or a server that is briefly away. */
  get retryable() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/** Exponential backoff with "equal jitter": half the step is fixed, half is random. */
export function backoffDelayMs(attempt, { initialDelayMs = 500, maxDelayMs = 10_000, random = Math.random } = {}) {
  const step = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function retryAfterMs(response) {
  const value = response.headers.get("Retry-After");
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

async function errorFromResponse(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's HTML page, say): the status alone has to do.
  }
  const error = body?.error ?? {};
  return new ChatstreamError(error.message || `HTTP ${response.status}`, {
    status: response.status,
    code: error.code || `http_${response.status}`,
    details: error.details ?? null,
    retryAfterMs: retryAfterMs(response),
  });
}

/** A client for one chatstream gateway. */
export class ChatstreamClient {
  constructor({
    baseUrl = "",
    apiKey = null,
    getToken = null,
    fetch: fetchImpl = globalThis.fetch.bind(globalThis),
    heartbeatTimeoutMs = 45_000,
    initialDelayMs = 500,
    maxDelayMs = 10_000,
    maxAttempts = 8,
    random = Math.random,
  } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.getToken = getToken ?? (() => apiKey);
    this.fetch = fetchImpl;
    this.options = { heartbeatTimeoutMs, initialDelayMs, maxDelayMs, maxAttempts, random };
  }

  async headers(extra = {}) {
    const token = await this.getToken();
    return token ? { ...extra, Authorization: `Bearer ${token}` } : { ...extra };
  }

  /** A JSON request; resolves to the parsed body (null for 204), throws ChatstreamError. */
  async request(method, path, body = undefined, { signal } = {}) {
    const headers = await this.headers(body === undefined ? {} : { "Content-Type": "application/json" });
    let response;
    try {
      response = await this.fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new ChatstreamError(`cannot reach the server: ${e.message}`);
    }
    if (!response.ok) throw await errorFromResponse(response);
    if (response.status === 204) return null;
    return response.json();
  }

  createSession({ title, id } = {}) {
    const body = {};
    if (title !== undefined) body.title = title;
    if (id !== undefined) body.id = id;
    return this.request("POST", "/api/v1/sessions", body);
  }

  listSessions({ limit, cursor } = {}) {
    const query = new URLSearchParams();
    if (limit !== undefined) query.set("limit", String(limit));
    if (cursor) query.set("cursor", cursor);
    const suffix = query.toString() ? `?${query}` : "";
    return this.request("GET", `/api/v1/sessions${suffix}`);
  }

  getSession(id) {
    return this.request("GET", `/api/v1/sessions/${encodeURIComponent(id)}`);
  }

  renameSession(id, title) {
    return this.request("PATCH", `/api/v1/sessions/${encodeURIComponent(id)}`, { title });
  }

  deleteSession(id) {
    return this.request("DELETE", `/api/v1/sessions/${encodeURIComponent(id)}`);
  }

  async listMessages(sessionId) {
    const body = await this.request("GET", `/api/v1/sessions/${encodeURIComponent(sessionId)}/messages`);
    return body.messages;
  }

  /** Ask the server to stop a job. A job that already ended (409) counts as stopped. */
  async cancel(jobId) {
    try {
      await this.request("POST", `${STREAMS_PATH}${encodeURIComponent(jobId)}/cancel`);
    } catch (e) {
      if (!(e instanceof ChatstreamError && e.status === 409)) throw e;
    }
  }

  /** Send a message to a session and stream the answer (seed 002's route). */
  sendMessage(sessionId, content, { simpleLanguage = false, pipeline, ...options } = {}) {
    const body = { content, simple_language: simpleLanguage };
    if (pipeline) body.pipeline = pipeline;
    return this.stream(`/api/v1/sessions/${encodeURIComponent(sessionId)}/messages/stream`, body, options);
  }

  /**
   * Ask within a project's knowledge collection (seed 003's route). Without a sessionId the
   * server creates a session; the stream's sessionId then names it.
   */
  projectChat(project, message, { sessionId, simpleLanguage = false, pipeline, ...options } = {}) {
    const body = { message, simple_language: simpleLanguage };
    if (sessionId) body.session_id = sessionId;
    if (pipeline) body.pipeline = pipeline;
    return this.stream(`${projectPath(project)}/chat-stream`, body, options);
  }

  /** A project's documents; an unknown project, or another user's, is a 404 ChatstreamError. */
  async listDocuments(project) {
    const body = await this.request("GET", `${projectPath(project)}/documents`);
    return body.documents;
  }

  /** Add a document to a project (the first upload creates the project). */
  addDocument(project, { name, content, format = "markdown" }) {
    return this.request("POST", `${projectPath(project)}/documents`, { name, content, format });
  }

  deleteDocument(project, documentId) {
    return this.request("DELETE", `${projectPath(project)}/documents/${encodeURIComponent(documentId)}`);
  }

  /** POST any streaming route's body and stream its events. */
  stream(path, body, options = {}) {
    return new ChatStream(this, { method: "POST", path, body }, options);
  }

  /** Attach to a job's stream; with lastEventId, only the events after it. */
  resume(jobId, { lastEventId = null, ...options } = {}) {
    const stream = new ChatStream(this, null, options);
    stream.jobId = jobId;
    if (lastEventId !== null) stream.lastEventId = Number(lastEventId);
    return stream;
  }
}

/**
 * One answer's stream: an async iterator of events, or callbacks through on(type, fn).
 * Besides the server's events it yields {type: "reconnecting", attempt, delayMs, reason}
 * before each resume and {type: "reconnected"} once events flow again.
 */
export class ChatStream {
  constructor(client, first, { signal = null, cancelOnAbort = true, ...overrides } = {}) {
    this.client = client;
    this.first = first;
    this.options = { ...client.options, ...overrides };
    this.jobId = null;
    this.sessionId = null;
    this.lastEventId = 0;
    this.serverRetryMs = null;
    this.finished = false;
    this.listeners = new Map();
    this.controller = new AbortController();
    this.cancelOnAbort = cancelOnAbort;
    if (signal) {
      if (signal.aborted) this.abort(signal.reason);
      else signal.addEventListener("abort", () => this.abort(signal.reason), { once: true });
    }
  }

  on(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(listener);
    return this;
  }

  /** Read the whole stream, calling the listeners; resolves to the final event. */
  async run() {
    let last = null;
    for await (const event of this) last = event;
    return last;
  }

  /** Stop the job on the server; the stream then ends with finishReason "cancelled". */
  async cancel() {
    if (this.jobId && !this.finished) await this.client.cancel(this.jobId);
  }

  /** Close the connection now. With cancelOnAbort (the default) the job is cancelled too. */
  abort(reason = new DOMException("The stream was aborted", "AbortError")) {
    if (this.controller.signal.aborted) return;
    if (this.cancelOnAbort && this.jobId && !this.finished) {
      this.client.cancel(this.jobId).catch(() => {});
    }
    this.controller.abort(reason);
  }

  async *[Symbol.asyncIterator]() {
    let attempt = 0;
    let reason = null;
    let request = this.first;
    try {
      for (;;) {
        if (reason !== null) {
          attempt += 1;
          if (attempt > this.options.maxAttempts) throw reason;
          const delayMs = reason.retryAfterMs ?? backoffDelayMs(attempt, {
            ...this.options,
            initialDelayMs: this.serverRetryMs ?? this.options.initialDelayMs,
          });
          yield this.emit({ type: "reconnecting", attempt, delayMs, reason: reason.code, lastEventId: this.lastEventId });
          await sleep(delayMs, this.controller.signal);
          request = null;
        }
        let flowing = false;
        try {
          for await (const event of this.connect(request)) {
            if (event.type === "error" && event.code === "slow_client") {
              // The server cut a client that read too slowly; it asks us to resume.
              throw new ChatstreamError(event.error, { code: "slow_client" });
            }
            if (!flowing && attempt > 0) yield this.emit({ type: "reconnected", attempt });
            flowing = true;
            attempt = 0;
            yield this.emit(event);
            if (TERMINAL_TYPES.has(event.type)) {
              this.finished = true;
              return;
            }
          }
          reason = new ChatstreamError("the stream closed before its end event", { code: "stream_cut" });
        } catch (e) {
          if (this.controller.signal.aborted) throw this.controller.signal.reason;
          if (!(e instanceof ChatstreamError) || !e.retryable || this.jobId === null) throw e;
          reason = e;
        }
      }
    } finally {
      this.finished = true;
    }
  }

  emit(event) {
    for (const listener of this.listeners.get(event.type) ?? []) listener(event);
    for (const listener of this.listeners.get("*") ?? []) listener(event);
    return event;
  }

  async open(request, signal) {
    const client = this.client;
    const accept = { Accept: "text/event-stream" };
    let url;
    let init;
    if (request) {
      url = client.baseUrl + request.path;
      init = {
        method: request.method,
        headers: await client.headers({ ...accept, "Content-Type": "application/json" }),
        body: JSON.stringify(request.body),
      };
    } else {
      url = client.baseUrl + STREAMS_PATH + encodeURIComponent(this.jobId);
      init = { method: "GET", headers: await client.headers({ ...accept, "Last-Event-ID": String(this.lastEventId) }) };
    }
    let response;
    try {
      response = await client.fetch(url, { ...init, signal, cache: "no-store" });
    } catch (e) {
      throw new ChatstreamError(`connection failed: ${e.message}`, { code: "network" });
    }
    if (!response.ok) throw await errorFromResponse(response);
    const type = response.headers.get("Content-Type") || "";
    if (!type.startsWith("text/event-stream")) {
      throw new ChatstreamError(`expected an event stream, got ${type || "no content type"}`, {
        status: response.status,
        code: "not_a_stream",
      });
    }
    this.jobId = response.headers.get("X-Job-Id") ?? this.jobId;
    this.sessionId = response.headers.get("X-Session-Id") ?? this.sessionId;
    return response;
  }

  /** One connection: its events, with a watchdog that aborts it when it falls silent. */
  async *connect(request) {
    const connection = new AbortController();
    const onAbort = () => connection.abort(this.controller.signal.reason);
    this.controller.signal.addEventListener("abort", onAbort, { once: true });
    let watchdog = null;
    let silent = false;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        silent = true;
        connection.abort(new ChatstreamError("the connection fell silent", { code: "heartbeat_timeout" }));
      }, this.options.heartbeatTimeoutMs);
    };
    try {
      arm();
      const response = await this.open(request, connection.signal);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      const queue = [];
      const parser = new SseParser({
        onMessage: (message) => queue.push(message),
        onRetry: (ms) => {
          this.serverRetryMs = ms;
        },
      });
      try {
        for (;;) {
          let chunk;
          try {
            chunk = await reader.read();
          } catch (e) {
            if (silent) throw new ChatstreamError("the connection fell silent", { code: "heartbeat_timeout" });
            if (this.controller.signal.aborted) throw e;
            throw new ChatstreamError(`the connection dropped: ${e.message}`, { code: "stream_cut" });
          }
          if (chunk.done) break;
          // Any bytes, heartbeat or comment included, prove the connection is alive.
          arm();
          parser.push(decoder.decode(chunk.value, { stream: true }));
          while (queue.length > 0) {
            const event = this.accept(queue.shift());
            if (event) yield event;
          }
        }
      } finally {
        reader.cancel().catch(() => {});
      }
    } catch (e) {
      if (silent && !this.controller.signal.aborted) {
        throw new ChatstreamError("the connection fell silent", { code: "heartbeat_timeout" });
      }
      throw e;
    } finally {
      clearTimeout(watchdog);
      this.controller.signal.removeEventListener("abort", onAbort);
    }
  }

  /** Parse one SSE message; drop what was already seen, so a resume never shows a duplicate. */
  accept(message) {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return null;
    }
    if (typeof event !== "object" || event === null || typeof event.type !== "string") return null;
    if (message.hasId) {
      const seq = Number(message.id);
      if (Number.isInteger(seq)) {
        if (seq <= this.lastEventId) return null;
        this.lastEventId = seq;
        event.seq = seq;
      }
    }
    if (event.type === "start") {
      this.jobId = event.jobId ?? this.jobId;
      this.sessionId = event.sessionId ?? this.sessionId;
    }
    return event;
  }
}
