// useChatStream against a real gateway and worker, which tests/clients/test_js_package.py starts
// on the real Redis and RabbitMQ and names here through CHATSTREAM_TEST_URL,
// CHATSTREAM_TEST_API_KEY and CHATSTREAM_TEST_STEPS. Without them (a plain `npm test`) these tests are skipped; the
// pytest driver fails if they are.
import { act, renderHook, waitFor } from "@testing-library/react";
import { describe, expect, test } from "vitest";

import { ChatstreamClient } from "../../src/chatstream.js";
import { useChatStream } from "../../src/react.js";

const BASE_URL = process.env.CHATSTREAM_TEST_URL;
const API_KEY = process.env.CHATSTREAM_TEST_API_KEY;
// The contract's progress steps, in order, as the gateway's own code lists them.
const STEPS = process.env.CHATSTREAM_TEST_STEPS?.split(",");

const DOCUMENT = {
  name: "harbour-guide.md",
  content: [
    "# The harbour guide",
    "",
    "The ferry to Lindholm leaves the north pier every forty minutes from six in the morning.",
    "Tickets for the ferry are sold at the kiosk beside the lighthouse.",
    "",
    "## Fishing",
    "",
    "Fishing from the breakwater needs a permit from the harbour master.",
  ].join("\n"),
};
const QUESTION = "How often does the ferry to Lindholm leave the north pier?";
// The echo pipeline writes this back a word at a time, slowly enough to be stopped.
const LONG_QUESTION = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");

const client = () => new ChatstreamClient({ baseUrl: BASE_URL, apiKey: API_KEY });
const oneSpaced = (text) => text.split(/\s+/).filter(Boolean).join(" ");

describe.skipIf(!BASE_URL)("useChatStream against a running gateway", () => {
  test("a question about an uploaded document ends with its name and a quote as the source", async () => {
    const api = client();
    const project = `harbour-${Date.now()}`;
    await api.addDocument(project, DOCUMENT);
    const { result } = renderHook(() => useChatStream(api));

    await act(() => result.current.send(QUESTION, { project, pipeline: "rag" }));

    expect(result.current.error).toBeNull();
    expect(result.current.status).toBe("done");
    expect(result.current.text).toMatch(/forty minutes/);
    expect(result.current.steps.map((s) => s.step)).toEqual(STEPS);
    const [first] = result.current.citations;
    expect(first).toMatchObject({ id: 1, project, document: DOCUMENT.name });
    expect(Object.keys(first).sort()).toEqual(["chunkId", "document", "documentId", "id", "project", "quotes", "score"]);
    expect(first.quotes.length).toBeGreaterThan(0);
    for (const quote of first.quotes) expect(oneSpaced(DOCUMENT.content)).toContain(oneSpaced(quote));
    expect(result.current.sessionId).toBeTruthy();

    // The stored answer carries the same sources.
    const messages = await api.listMessages(result.current.sessionId);
    expect(messages.at(-1).citations).toEqual(result.current.citations);
  });

  test("stop cancels the answer on the server, and a second hook resumes a running job by id", async () => {
    const api = client();
    const first = renderHook(() => useChatStream(api));
    act(() => {
      first.result.current.send(LONG_QUESTION);
    });
    await waitFor(() => expect(first.result.current.text).not.toBe(""));
    const { jobId } = first.result.current;
    expect(jobId).toBeTruthy();

    // As after a page reload: this hook goes away, another attaches to the job by its id.
    first.unmount();
    const second = renderHook(() => useChatStream(api));
    act(() => {
      second.result.current.resume(jobId);
    });
    await waitFor(() => expect(second.result.current.text.split(" ").length).toBeGreaterThan(2));
    await act(() => second.result.current.stop());
    await waitFor(() => expect(second.result.current.status).toBe("cancelled"));
    const shown = second.result.current.text;
    expect(LONG_QUESTION.startsWith(shown)).toBe(true);
    expect(shown.length).toBeLessThan(LONG_QUESTION.length);
  });
});
