// A small local HTTP server that speaks the chatstream contract's SSE, for the client's tests
// (node:test) and the React hook's (Vitest): one echo-like job's events, framed as the gateway
// frames them, and a replay after Last-Event-ID.
import { once } from "node:events";
import http from "node:http";

export const WORDS = ["Streams", " resume", " where", " they", " stopped."];
export const ANSWER = WORDS.join("");

/** A source as a RAG answer's `end` event cites it. */
export const CITATION = Object.freeze({
  id: 1,
  project: "handbook",
  documentId: "d-1",
  document: "resume.md",
  chunkId: "c-1",
  score: 0.61,
  quotes: ["Streams resume where they stopped."],
});

/** The events of one echo-like job, numbered from seq 1 as the contract numbers them. */
export function jobEvents(jobId = "job-1", { citations = [] } = {}) {
  const events = [{ type: "start", jobId, sessionId: "s-1", messageId: "m-1" }];
  for (const step of ["start", "context", "completion"]) {
    events.push({ type: "progress", progress: { step, message: step, details: null, timestamp: "t", metadata: {} } });
  }
  for (const word of WORDS) events.push({ type: "token", content: word, delta: word, done: false });
  events.push({
    type: "end",
    messageId: "m-1",
    delta: "",
    done: true,
    finishReason: "stop",
    content: ANSWER,
    citations,
    usage: { tokens: WORDS.length, ttftMs: 1, durationMs: 2 },
  });
  return events.map((event, i) => ({ seq: i + 1, event }));
}

export const frame = ({ seq, event }) => `id: ${seq}\ndata: ${JSON.stringify(event)}\n\n`;

/** Start a server whose handler is `handle(req, res, n)` for the n-th request (0-based). */
export async function serve(handle) {
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const n = requests.length;
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      handle(req, res, n);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const baseUrl = `http://127.0.0.1:${server.address().port}`;
  const close = () => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  };
  return { baseUrl, requests, close };
}

export function openStream(res, jobId = "job-1") {
  res.writeHead(200, { "Content-Type": "text/event-stream", "X-Job-Id": jobId, "X-Session-Id": "s-1" });
  res.write("retry: 10\n\n");
}

/** The replay a contract server sends: every event after Last-Event-ID. */
export function replayAfter(req, res, events) {
  const after = Number(req.headers["last-event-id"] ?? 0);
  openStream(res);
  for (const e of events) if (e.seq > after) res.write(frame(e));
  res.end();
}
