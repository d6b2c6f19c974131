// The client against a small local HTTP server that speaks the chatstream contract's SSE:
// resume after a cut, the heartbeat watchdog, cancel, errors and callbacks.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ChatstreamClient, ChatstreamError } from "../../src/chatstream.js";
import { ANSWER, CITATION, WORDS, frame, jobEvents, openStream, replayAfter, serve } from "../support/contract-server.mjs";

function client(baseUrl, options = {}) {
  return new ChatstreamClient({ baseUrl, apiKey: "k1", initialDelayMs: 5, maxDelayMs: 20, ...options });
}

async function collect(stream) {
  const seen = [];
  for await (const event of stream) seen.push(event);
  return seen;
}

const tokensOf = (seen) => seen.filter((e) => e.type === "token").map((e) => e.content).join("");

test("an answer streams as typed events, with the bearer token and the seq of each", async (t) => {
  const events = jobEvents();
  const server = await serve((req, res) => {
    openStream(res);
    // One frame split in two writes, and a CRLF frame, as a proxy may deliver them.
    const [first, ...rest] = events;
    const wire = frame(first);
    res.write(wire.slice(0, 12));
    setTimeout(() => {
      res.write(wire.slice(12));
      res.write(frame(rest[0]).replaceAll("\n", "\r\n"));
      res.write(": keep-alive\n\n");
      for (const e of rest.slice(1)) res.write(frame(e));
      res.end();
    }, 20);
  });
  t.after(server.close);
  const seen = await collect(client(server.baseUrl).sendMessage("s-1", "hello", { simpleLanguage: true }));
  assert.deepEqual(
    seen.map((e) => e.seq),
    events.map((e) => e.seq),
  );
  assert.equal(seen.at(-1).type, "end");
  assert.equal(tokensOf(seen), ANSWER);
  const [request] = server.requests;
  assert.equal(request.method, "POST");
  assert.equal(request.url, "/api/v1/sessions/s-1/messages/stream");
  assert.equal(request.headers.authorization, "Bearer k1");
  assert.deepEqual(JSON.parse(request.body), { content: "hello", simple_language: true });
});

test("after a cut the client resumes with Last-Event-ID and shows no duplicate", async (t) => {
  const events = jobEvents();
  const cutAfter = 6;
  const server = await serve((req, res, n) => {
    if (n === 0) {
      openStream(res);
      for (const e of events.slice(0, cutAfter)) res.write(frame(e));
      // A half-written frame, then the connection dies.
      res.write('id: 7\ndata: {"type":"tok');
      setTimeout(() => res.destroy(), 10);
      return;
    }
    replayAfter(req, res, events);
  });
  t.after(server.close);
  const seen = await collect(client(server.baseUrl).sendMessage("s-1", "hello"));
  const resume = server.requests[1];
  assert.equal(resume.method, "GET");
  assert.equal(resume.url, "/api/v1/streams/job-1");
  assert.equal(resume.headers["last-event-id"], String(cutAfter));
  assert.equal(resume.headers.authorization, "Bearer k1");
  const fromServer = seen.filter((e) => e.seq !== undefined);
  assert.deepEqual(
    fromServer.map((e) => e.seq),
    events.map((e) => e.seq),
  );
  assert.equal(tokensOf(seen), ANSWER);
  assert.equal(seen.at(-1).content, ANSWER);
  const statuses = seen.filter((e) => e.type === "reconnecting" || e.type === "reconnected");
  assert.deepEqual(
    statuses.map((e) => [e.type, e.attempt]),
    [["reconnecting", 1], ["reconnected", 1]],
  );
  assert.equal(statuses[0].lastEventId, cutAfter);
});

test("events the server replays twice are dropped by seq", async (t) => {
  const events = jobEvents();
  const server = await serve((req, res, n) => {
    openStream(res);
    if (n === 0) {
      for (const e of events.slice(0, 6)) res.write(frame(e));
      res.end();
      return;
    }
    // A server that replays too much (from seq 3) must not make the client show it twice.
    for (const e of events.slice(2)) res.write(frame(e));
    res.end();
  });
  t.after(server.close);
  const seen = await collect(client(server.baseUrl).sendMessage("s-1", "hello"));
  assert.equal(tokensOf(seen), ANSWER);
  assert.deepEqual(
    seen.filter((e) => e.seq !== undefined).map((e) => e.seq),
    events.map((e) => e.seq),
  );
});

test("a silent connection is detected by the watchdog and resumed", async (t) => {
  const events = jobEvents();
  const server = await serve((req, res, n) => {
    if (n === 0) {
      openStream(res);
      for (const e of events.slice(0, 4)) res.write(frame(e));
      // Then nothing at all, not even a heartbeat: the connection stays open but is dead.
      return;
    }
    replayAfter(req, res, events);
  });
  t.after(server.close);
  const seen = await collect(client(server.baseUrl, { heartbeatTimeoutMs: 150 }).sendMessage("s-1", "q"));
  const reconnecting = seen.find((e) => e.type === "reconnecting");
  assert.equal(reconnecting.reason, "heartbeat_timeout");
  assert.equal(server.requests[1].headers["last-event-id"], "4");
  assert.equal(tokensOf(seen), ANSWER);
  assert.equal(seen.at(-1).type, "end");
});

test("heartbeats keep a connection alive for the watchdog through a long pause", async (t) => {
  const events = jobEvents();
  const server = await serve((req, res) => {
    openStream(res);
    res.write(frame(events[0]));
    const heartbeat = JSON.stringify({ type: "heartbeat", timestamp: "t", phase: "queued" });
    let beats = 0;
    // A job queued for 1.5 s, 2.5 times the watchdog's limit, with a heartbeat every 100 ms.
    const timer = setInterval(() => {
      res.write(`data: ${heartbeat}\n\n`);
      beats += 1;
      if (beats === 15) {
        clearInterval(timer);
        for (const e of events.slice(1)) res.write(frame(e));
        res.end();
      }
    }, 100);
    res.on("close", () => clearInterval(timer));
  });
  t.after(server.close);
  const seen = await collect(client(server.baseUrl, { heartbeatTimeoutMs: 600 }).sendMessage("s-1", "q"));
  assert.equal(server.requests.length, 1, "the connection was never treated as dropped");
  assert.equal(seen.filter((e) => e.type === "heartbeat" && e.seq === undefined).length, 15);
  assert.equal(tokensOf(seen), ANSWER);
});

test("abort closes the stream and asks the server to cancel the job", async (t) => {
  const events = jobEvents();
  let cancelled;
  const cancelSeen = new Promise((resolve) => (cancelled = resolve));
  const server = await serve((req, res) => {
    if (req.url.endsWith("/cancel")) {
      res.writeHead(202, { "Content-Type": "application/json" });
      res.end("{}");
      cancelled(req);
      return;
    }
    openStream(res);
    for (const e of events.slice(0, 5)) res.write(frame(e));
  });
  t.after(server.close);
  const controller = new AbortController();
  const stream = client(server.baseUrl).sendMessage("s-1", "q", { signal: controller.signal });
  const seen = [];
  await assert.rejects(async () => {
    for await (const event of stream) {
      seen.push(event);
      if (event.type === "token") controller.abort();
    }
  }, { name: "AbortError" });
  const request = await cancelSeen;
  assert.equal(request.method, "POST");
  assert.equal(request.url, "/api/v1/streams/job-1/cancel");
  assert.equal(request.headers.authorization, "Bearer k1");
  assert.equal(seen.filter((e) => e.type === "token").length, 1);
});

test("cancel() posts the cancel route and the stream ends with finishReason cancelled", async (t) => {
  const events = jobEvents();
  let live;
  const server = await serve((req, res) => {
    if (req.url.endsWith("/cancel")) {
      res.writeHead(202, { "Content-Type": "application/json" });
      res.end("{}");
      const ended = { ...events.at(-1).event, finishReason: "cancelled", content: WORDS[0] };
      live.write(frame({ seq: 6, event: ended }));
      live.end();
      return;
    }
    live = res;
    openStream(res);
    for (const e of events.slice(0, 5)) res.write(frame(e));
  });
  t.after(server.close);
  const stream = client(server.baseUrl).sendMessage("s-1", "q");
  stream.on("token", () => stream.cancel());
  const last = await stream.run();
  assert.equal(last.type, "end");
  assert.equal(last.finishReason, "cancelled");
});

test("an error before the stream is a ChatstreamError with the contract's code", async (t) => {
  const server = await serve((req, res) => {
    res.writeHead(401, { "Content-Type": "application/json", "WWW-Authenticate": "Bearer" });
    res.end(JSON.stringify({ error: { code: "unauthorized", message: "a valid bearer token is required", details: null } }));
  });
  t.after(server.close);
  await assert.rejects(collect(client(server.baseUrl).sendMessage("s-1", "q")), (e) => {
    assert.ok(e instanceof ChatstreamError);
    assert.equal(e.status, 401);
    assert.equal(e.code, "unauthorized");
    assert.equal(e.message, "a valid bearer token is required");
    return true;
  });
  assert.equal(server.requests.length, 1, "a 401 is not retried");
});

test("an error event ends the stream; the callbacks see each event type", async (t) => {
  const server = await serve((req, res) => {
    openStream(res);
    res.write(frame({ seq: 1, event: { type: "start", jobId: "job-1", sessionId: "s", messageId: "m" } }));
    res.write(frame({ seq: 2, event: { type: "error", error: "the pipeline failed", code: "pipeline_error" } }));
    // The server closes after an error; nothing after it may be shown.
    res.end(frame({ seq: 3, event: { type: "token", content: "late", delta: "late", done: false } }));
  });
  t.after(server.close);
  const types = [];
  const stream = client(server.baseUrl).stream("/api/v1/chat/stream", { text: "q" }).on("*", (e) => types.push(e.type));
  const last = await stream.run();
  assert.deepEqual(types, ["start", "error"]);
  assert.equal(last.code, "pipeline_error");
  assert.equal(stream.jobId, "job-1");
});

test("sessions and messages go through the JSON routes", async (t) => {
  const session = { id: "42", title: "New conversation", userId: "alice", createdAt: "t", updatedAt: "t", messageCount: 0 };
  const server = await serve((req, res) => {
    res.writeHead(req.method === "POST" ? 201 : 200, { "Content-Type": "application/json" });
    if (req.method === "POST") res.end(JSON.stringify(session));
    else if (req.url.endsWith("/messages")) res.end(JSON.stringify({ messages: [] }));
    else res.end(JSON.stringify({ sessions: [session], nextCursor: null }));
  });
  t.after(server.close);
  const api = client(server.baseUrl);
  assert.deepEqual(await api.createSession({ title: "Trip" }), session);
  assert.deepEqual((await api.listSessions({ limit: 5 })).sessions, [session]);
  assert.deepEqual(await api.listMessages("42"), []);
  assert.deepEqual(
    server.requests.map((r) => [r.method, r.url, r.body]),
    [
      ["POST", "/api/v1/sessions", '{"title":"Trip"}'],
      ["GET", "/api/v1/sessions?limit=5", ""],
      ["GET", "/api/v1/sessions/42/messages", ""],
    ],
  );
});

test("a project's question, documents and citations go through the project routes", async (t) => {
  const document = { id: "d-1", project: "hand book", name: "resume.md", format: "markdown", chunks: 1, chars: 40, createdAt: "t" };
  const events = jobEvents("job-1", { citations: [CITATION] });
  const server = await serve((req, res) => {
    if (req.url.endsWith("/chat-stream")) {
      openStream(res);
      for (const e of events) res.write(frame(e));
      res.end();
      return;
    }
    res.writeHead(req.method === "POST" ? 201 : 200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(req.method === "POST" ? document : { project: "hand book", documents: [document] }));
  });
  t.after(server.close);
  const api = client(server.baseUrl);
  assert.deepEqual(await api.addDocument("hand book", { name: "resume.md", content: "# Resume" }), document);
  assert.deepEqual(await api.listDocuments("hand book"), [document]);
  const last = await api.projectChat("hand book", "How?", { sessionId: "s-1", pipeline: "rag" }).run();
  assert.deepEqual(last.citations, [CITATION]);
  assert.deepEqual(
    server.requests.map((r) => [r.method, r.url, r.body && JSON.parse(r.body)]),
    [
      ["POST", "/api/v1/projects/hand%20book/documents", { name: "resume.md", content: "# Resume", format: "markdown" }],
      ["GET", "/api/v1/projects/hand%20book/documents", ""],
      [
        "POST",
        "/api/v1/projects/hand%20book/chat-stream",
        { message: "How?", simple_language: false, session_id: "s-1", pipeline: "rag" },
      ],
    ],
  );
});
