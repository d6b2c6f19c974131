// One answer's state, folded from its stream's events: a pure reducer with no React and no DOM,
// so any front end (the React hook beside it, or another framework's store) can hold it.

/** The state before anything was asked. */
export const initialChatStreamState = Object.freeze({
  status: "idle",
  steps: [],
  text: "",
  citations: [],
  error: null,
  jobId: null,
  sessionId: null,
  messageId: null,
  lastEventId: 0,
  finishReason: null,
  usage: null,
  queuePosition: null,
  reconnect: null,
});

const RUNNING = new Set(["streaming", "reconnecting"]);

/** One entry per step name, in the order they first came; a repeated step updates its entry. */
function withStep(steps, progress) {
  const at = steps.findIndex((known) => known.step === progress.step);
  if (at < 0) return [...steps, progress];
  return steps.map((known, i) => (i === at ? progress : known));
}

/** The error state's `error`: what went wrong, in the contract's terms. */
export function describeError(error) {
  if (error && typeof error === "object") {
    return {
      message: String(error.message ?? error.error ?? "the stream failed"),
      code: String(error.code ?? "error"),
      status: Number.isInteger(error.status) ? error.status : 0,
      retryable: Boolean(error.retryable),
    };
  }
  return { message: String(error), code: "error", status: 0, retryable: false };
}

/**
 * Actions: `{type: "begin", keep}` when a stream opens (keep: a resume of the same answer, so
 * what is shown stays), `{type: "event", event, stream}` for each event the stream yields, with
 * the stream's jobId, sessionId and lastEventId, `{type: "failed", error}` when it throws, and
 * `{type: "clear"}`.
 */
export function chatStreamReducer(state, action) {
  switch (action.type) {
    case "clear":
      return initialChatStreamState;
    case "begin":
      if (action.keep) return { ...state, status: "reconnecting", error: null };
      return { ...initialChatStreamState, status: "streaming" };
    case "failed":
      return { ...state, status: "error", error: describeError(action.error), reconnect: null };
    case "event":
      return applyEvent(withStream(state, action.stream), action.event);
    default:
      return state;
  }
}

function withStream(state, stream) {
  if (!stream) return state;
  return {
    ...state,
    jobId: stream.jobId ?? state.jobId,
    sessionId: stream.sessionId ?? state.sessionId,
    lastEventId: stream.lastEventId ?? state.lastEventId,
  };
}

function applyEvent(state, event) {
  // Whatever flows while the stream is open shows it is live again after a reconnect.
  const live = RUNNING.has(state.status) ? { status: "streaming", reconnect: null } : {};
  switch (event.type) {
    case "start":
      return {
        ...state,
        ...live,
        jobId: event.jobId ?? state.jobId,
        sessionId: event.sessionId ?? state.sessionId,
        messageId: event.messageId ?? state.messageId,
      };
    case "progress":
      return event.progress ? { ...state, ...live, steps: withStep(state.steps, event.progress) } : state;
    case "token":
      return { ...state, ...live, queuePosition: null, text: state.text + (event.content ?? "") };
    case "heartbeat":
      return {
        ...state,
        ...live,
        queuePosition: event.phase === "queued" && Number.isInteger(event.queuePosition) ? event.queuePosition : null,
      };
    case "reset":
      // The server sends a fresh copy of this answer next: drop what is shown.
      return { ...state, ...live, text: "" };
    case "snapshot": {
      const last = event.messages?.at(-1);
      return last?.role === "assistant" ? { ...state, ...live, text: last.content ?? "" } : state;
    }
    case "reconnecting":
      return {
        ...state,
        status: "reconnecting",
        reconnect: { attempt: event.attempt, delayMs: event.delayMs, reason: event.reason },
      };
    case "reconnected":
      return { ...state, ...live };
    case "end":
      return {
        ...state,
        status: event.finishReason === "cancelled" ? "cancelled" : "done",
        text: event.content ?? state.text,
        citations: Array.isArray(event.citations) ? event.citations : [],
        messageId: event.messageId ?? state.messageId,
        finishReason: event.finishReason ?? null,
        usage: event.usage ?? null,
        queuePosition: null,
        reconnect: null,
      };
    case "error":
      return {
        ...state,
        status: "error",
        error: {
          message: event.error ?? "the answer failed",
          code: event.code ?? "error",
          status: 0,
          // The contract's one error event that asks for a resume once the store is back.
          retryable: event.code === "unavailable",
        },
        queuePosition: null,
        reconnect: null,
      };
    default:
      return state;
  }
}
