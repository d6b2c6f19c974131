// useChatStream rendered by React in jsdom, against a small local server that speaks the
// contract (test/support). Each server holds its stream at a gate the test opens, so a state in
// the middle of an answer is seen for certain, never by timing.
import { act, renderHook, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, test } from "vitest";

import { ChatstreamClient } from "../../src/chatstream.js";
import { useChatStream } from "../../src/react.js";
import { ANSWER, CITATION, WORDS, frame, jobEvents, openStream, replayAfter, serve } from "../support/contract-server.mjs";

const STEPS = ["start", "context", "completion"];
// start, the three steps and the first two tokens: the answer half written.
const HALF = 6;

const servers = [];
afterEach(async () => {
  while (servers.length > 0) await servers.pop().close();
});

async function contractServer(handle) {
  const server = await serve(handle);
  servers.push(server);
  return server;
}

function gate() {
  let open;
  const opened = new Promise((resolve) => (open = resolve));
  return { open, opened };
}

function client(baseUrl, options = {}) {
  return new ChatstreamClient({ baseUrl, apiKey: "k1", initialDelayMs: 5, maxDelayMs: 20, ...options });
}

/** Render the hook, recording the status of every render. */
function renderChat(chatClient) {
  const statuses = [];
  const view = renderHook(() => {
    const chat = useChatStream(chatClient);
    if (statuses.at(-1) !== chat.status) statuses.push(chat.status);
    return chat;
  });
  return { ...view, statuses };
}

/** Start send() without waiting for the answer's end; returns the promise of its end. */
function startSend(result, ...args) {
  let sent;
  act(() => {
    sent = result.current.send(...args);
  });
  return sent;
}

/**
 * A server that streams the answer half way, then waits; a cancel ends it with finishReason
 * "cancelled". With `held`, the answer does not start until that gate opens.
 */
function cancellableServer(held = null) {
  const events = jobEvents();
  let live;
  return contractServer(async (req, res) => {
    if (req.url.endsWith("/cancel")) {
      res.writeHead(202, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ jobId: "job-1", status: "cancelling" }));
      const cancelled = { ...events.at(-1).event, finishReason: "cancelled", content: WORDS[0] + WORDS[1] };
      live.end(frame({ seq: HALF + 1, event: cancelled }));
      return;
    }
    await held?.opened;
    live = res;
    openStream(res);
    for (const e of events.slice(0, HALF)) res.write(frame(e));
  });
}

describe("useChatStream against a contract server", () => {
  test("send streams the steps and the text, then ends done with the citations", async () => {
    const events = jobEvents("job-1", { citations: [CITATION] });
    const rest = gate();
    const server = await contractServer(async (req, res) => {
      openStream(res);
      for (const e of events.slice(0, HALF)) res.write(frame(e));
      await rest.opened;
      for (const e of events.slice(HALF)) res.write(frame(e));
      res.end();
    });
    const { result, statuses } = renderChat(client(server.baseUrl));
    expect(result.current.status).toBe("idle");

    const sent = startSend(result, "hello", { sessionId: "s-1", simpleLanguage: true });
    await waitFor(() => expect(result.current.text).toBe(WORDS[0] + WORDS[1]));
    expect(result.current.status).toBe("streaming");
    expect(result.current.steps.map((s) => s.step)).toEqual(STEPS);
    expect(result.current.citations).toEqual([]);
    expect(result.current.jobId).toBe("job-1");

    rest.open();
    await act(() => sent);
    expect(result.current.status).toBe("done");
    expect(result.current.text).toBe(ANSWER);
    expect(result.current.citations).toEqual([CITATION]);
    expect(result.current.finishReason).toBe("stop");
    expect(result.current.sessionId).toBe("s-1");
    expect(result.current.messageId).toBe("m-1");
    expect(result.current.lastEventId).toBe(events.length);
    expect(statuses).toEqual(["idle", "streaming", "done"]);
    const [request] = server.requests;
    expect([request.method, request.url]).toEqual(["POST", "/api/v1/sessions/s-1/messages/stream"]);
    expect(JSON.parse(request.body)).toEqual({ content: "hello", simple_language: true });
  });

  test("without a session one is created first; with a project the project's route is asked", async () => {
    const server = await contractServer((req, res) => {
      if (req.url === "/api/v1/sessions") {
        res.writeHead(201, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ id: "s-new", title: "t", userId: "u", createdAt: "t", updatedAt: "t", messageCount: 0 }));
        return;
      }
      replayAfter(req, res, jobEvents());
    });
    const { result } = renderChat(client(server.baseUrl));
    await act(() => result.current.send("What is new?"));
    expect(result.current.status).toBe("done");
    await act(() => result.current.send("And here?", { project: "hand book", sessionId: "s-new", pipeline: "rag" }));
    expect(result.current.status).toBe("done");
    expect(server.requests.map((r) => [r.method, r.url, JSON.parse(r.body)])).toEqual([
      ["POST", "/api/v1/sessions", { title: "What is new?" }],
      ["POST", "/api/v1/sessions/s-new/messages/stream", { content: "What is new?", simple_language: false }],
      [
        "POST",
        "/api/v1/projects/hand%20book/chat-stream",
        { message: "And here?", simple_language: false, session_id: "s-new", pipeline: "rag" },
      ],
    ]);
  });

  test("a cut shows reconnecting, resumes with Last-Event-ID and ends with the whole answer once", async () => {
    const events = jobEvents();
    const cut = gate();
    const resumed = gate();
    const server = await contractServer(async (req, res, n) => {
      if (n === 0) {
        openStream(res);
        for (const e of events.slice(0, HALF)) res.write(frame(e));
        res.write('id: 7\ndata: {"type":"tok');
        await cut.opened;
        res.destroy();
        return;
      }
      await resumed.opened;
      replayAfter(req, res, events);
    });
    const { result, statuses } = renderChat(client(server.baseUrl));
    const sent = startSend(result, "hello", { sessionId: "s-1" });
    await waitFor(() => expect(result.current.text).toBe(WORDS[0] + WORDS[1]));
    cut.open();
    await waitFor(() => expect(result.current.status).toBe("reconnecting"));
    // What was shown before the cut stays on screen while the client resumes.
    expect(result.current.text).toBe(WORDS[0] + WORDS[1]);
    expect(result.current.reconnect).toMatchObject({ attempt: 1, reason: "stream_cut" });
    resumed.open();
    await act(() => sent);
    expect(result.current.status).toBe("done");
    expect(result.current.text).toBe(ANSWER);
    expect(result.current.reconnect).toBeNull();
    // React may fold the "streaming" after the resume into the final render.
    expect(statuses.slice(0, 3)).toEqual(["idle", "streaming", "reconnecting"]);
    expect(statuses.at(-1)).toBe("done");
    const resume = server.requests[1];
    expect([resume.method, resume.url, resume.headers["last-event-id"]]).toEqual([
      "GET",
      "/api/v1/streams/job-1",
      String(HALF),
    ]);
  });

  test("stop cancels the job on the server and the answer ends cancelled", async () => {
    const server = await cancellableServer();
    const { result } = renderChat(client(server.baseUrl));
    const sent = startSend(result, "hello", { sessionId: "s-1" });
    await waitFor(() => expect(result.current.text).toBe(WORDS[0] + WORDS[1]));
    await act(() => result.current.stop());
    await act(() => sent);
    expect(result.current.status).toBe("cancelled");
    expect(result.current.finishReason).toBe("cancelled");
    expect(result.current.text).toBe(WORDS[0] + WORDS[1]);
    expect(server.requests.map((r) => [r.method, r.url])).toContainEqual(["POST", "/api/v1/streams/job-1/cancel"]);
  });

  test("a stop pressed before the job is known cancels it as soon as it is", async () => {
    const answer = gate();
    const server = await cancellableServer(answer);
    const { result } = renderChat(client(server.baseUrl));
    const sent = startSend(result, "hello", { sessionId: "s-1" });
    await waitFor(() => expect(server.requests).toHaveLength(1));
    await act(() => result.current.stop());
    expect(server.requests).toHaveLength(1);
    answer.open();
    await act(() => sent);
    expect(result.current.status).toBe("cancelled");
    expect(server.requests.map((r) => r.url)).toEqual([
      "/api/v1/sessions/s-1/messages/stream",
      "/api/v1/streams/job-1/cancel",
    ]);
  });

  test("a refused request and an error event end in error with the contract's code", async () => {
    const server = await contractServer((req, res) => {
      if (req.url.includes("/projects/")) {
        res.writeHead(404, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: { code: "not_found", message: "project not found", details: null } }));
        return;
      }
      openStream(res);
      res.write(frame({ seq: 1, event: { type: "start", jobId: "job-1", sessionId: "s-1", messageId: "m-1" } }));
      res.end(frame({ seq: 2, event: { type: "error", error: "the pipeline failed", code: "pipeline_error" } }));
    });
    const { result } = renderChat(client(server.baseUrl));
    await act(() => result.current.send("hello", { project: "nobodys" }));
    expect(result.current.status).toBe("error");
    expect(result.current.error).toEqual({ message: "project not found", code: "not_found", status: 404, retryable: false });
    await act(() => result.current.send("hello", { sessionId: "s-1" }));
    expect(result.current.status).toBe("error");
    expect(result.current.error).toMatchObject({ message: "the pipeline failed", code: "pipeline_error" });
    expect(result.current.jobId).toBe("job-1");
  });

  test("after the client gives up, resume() goes on from where the answer stopped", async () => {
    const events = jobEvents();
    const server = await contractServer((req, res, n) => {
      if (n === 0) {
        openStream(res);
        for (const e of events.slice(0, HALF)) res.write(frame(e));
        res.end();
        return;
      }
      replayAfter(req, res, events);
    });
    // No automatic retry: the cut surfaces as a retryable error for resume() to act on.
    const { result } = renderChat(client(server.baseUrl, { maxAttempts: 0 }));
    await act(() => result.current.send("hello", { sessionId: "s-1" }));
    expect(result.current.status).toBe("error");
    expect(result.current.error).toMatchObject({ code: "stream_cut", retryable: true });
    expect(result.current.text).toBe(WORDS[0] + WORDS[1]);
    expect(server.requests).toHaveLength(1);

    await act(() => result.current.resume());
    expect(result.current.status).toBe("done");
    expect(result.current.text).toBe(ANSWER);
    expect(result.current.error).toBeNull();
    expect(server.requests[1].headers["last-event-id"]).toBe(String(HALF));
  });

  test("resume(jobId) attaches to a job from its first event", async () => {
    const events = jobEvents("job-7");
    const server = await contractServer((req, res) => replayAfter(req, res, events));
    const { result } = renderChat(client(server.baseUrl));
    await act(() => result.current.resume("job-7"));
    expect(result.current.status).toBe("done");
    expect(result.current.text).toBe(ANSWER);
    expect([server.requests[0].url, server.requests[0].headers["last-event-id"]]).toEqual(["/api/v1/streams/job-7", "0"]);
  });

  test("unmounting closes the connection and leaves the job running", async () => {
    const events = jobEvents();
    const closed = gate();
    const server = await contractServer((req, res) => {
      openStream(res);
      for (const e of events.slice(0, HALF)) res.write(frame(e));
      res.on("close", closed.open);
    });
    const { result, unmount } = renderChat(client(server.baseUrl));
    startSend(result, "hello", { sessionId: "s-1" });
    await waitFor(() => expect(result.current.text).toBe(WORDS[0] + WORDS[1]));
    unmount();
    await closed.opened;
    expect(server.requests.map((r) => r.url)).toEqual(["/api/v1/sessions/s-1/messages/stream"]);
  });
});
