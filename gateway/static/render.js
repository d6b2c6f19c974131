// Message views for the chat page. A view owns one message's DOM and applies stream events to
// it; server text is always set with textContent, so nothing it sends can run as markup.

export const STEP_LABELS = {
  start: "Starting",
  context: "Reading context",
  analyzing: "Analyzing",
  planning: "Planning",
  validation: "Checking",
  execution: "Writing",
  memory: "Remembering",
  completion: "Finishing",
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function timeAgo(iso) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  const seconds = Math.max(0, (Date.now() - then) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(then).toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

/** One source of an answer: its number, its document's name and the quotes the answer rests on. */
function citationCard(citation, index) {
  const card = el("li", "citation");
  const head = el("span", "citation-title");
  head.append(el("span", "citation-index", String(Number.isInteger(citation.id) ? citation.id : index + 1)));
  head.append(el("span", "citation-document", citation.document || "Untitled document"));
  card.append(head);
  if (citation.project) card.append(el("span", "citation-source", citation.project));
  for (const quote of Array.isArray(citation.quotes) ? citation.quotes : []) {
    if (typeof quote === "string" && quote) card.append(el("blockquote", "citation-quote", quote));
  }
  return card;
}

/** A message's view: `element`, plus apply(event), reset() and fail(text) for answers. */
export function renderMessage(message) {
  const element = el("li", `message ${message.role === "user" ? "user" : "assistant"}`);
  if (message.role === "user") {
    element.append(el("div", "bubble", message.content));
    return { element };
  }
  const avatar = el("div", "avatar");
  avatar.setAttribute("aria-hidden", "true");
  const body = el("div", "answer");
  const steps = el("ol", "steps");
  const status = el("div", "status");
  status.setAttribute("role", "status");
  const text = el("div", "answer-text", message.content ?? "");
  const error = el("p", "answer-error");
  error.setAttribute("role", "alert");
  error.hidden = true;
  const citations = el("ol", "citations");
  const meta = el("div", "answer-meta");
  body.append(steps, status, text, error, citations, meta);
  element.append(avatar, body);

  let stepItems = new Map();
  const setState = (name) => {
    element.dataset.state = name;
  };
  const setStatus = (label, kind = "") => {
    status.textContent = label;
    status.className = `status ${kind}`.trim();
    status.hidden = !label;
  };
  const showCitations = (list) => {
    citations.replaceChildren(...(Array.isArray(list) ? list : []).map(citationCard));
  };
  // Once the answer is there, the steps fold into one chip that unfolds on a click.
  const collapseSteps = () => {
    if (stepItems.size === 0) return;
    steps.classList.add("done");
    steps.dataset.summary = `${stepItems.size} step${stepItems.size === 1 ? "" : "s"}`;
    steps.title = "Show the steps";
  };
  steps.addEventListener("click", () => {
    if (steps.classList.contains("done")) steps.classList.toggle("expanded");
  });
  const finish = (finishReason, usage) => {
    const notes = [];
    if (finishReason === "cancelled") notes.push("Stopped");
    if (finishReason === "length") notes.push("Cut short at the length limit");
    if (usage?.tokens) notes.push(`${usage.tokens} tokens`);
    if (usage?.durationMs) notes.push(`${(usage.durationMs / 1000).toFixed(1)} s`);
    meta.textContent = notes.join(" · ");
    element.classList.toggle("stopped", finishReason === "cancelled");
  };

  setState(message.status ?? "complete");
  setStatus("");
  showCitations(message.citations);
  if (message.status === "cancelled") finish("cancelled", message.usage);
  else if (message.status === "error") {
    error.textContent = "This answer failed.";
    error.hidden = false;
  } else finish("stop", message.usage);

  const view = {
    element,
    reset() {
      text.textContent = "";
      steps.replaceChildren();
      steps.className = "steps";
      stepItems = new Map();
      showCitations([]);
      meta.textContent = "";
      setState("streaming");
      setStatus("Connecting…", "pending");
    },
    fail(message) {
      setState("error");
      setStatus("");
      collapseSteps();
      error.textContent = message;
      error.hidden = false;
    },
    apply(event) {
      switch (event.type) {
        case "start":
          setState("streaming");
          setStatus("Thinking…", "pending");
          break;
        case "heartbeat":
          if (event.phase === "queued") {
            const where = Number.isInteger(event.queuePosition) ? ` (position ${event.queuePosition})` : "";
            setStatus(`Waiting in the queue${where}…`, "pending");
          }
          break;
        case "progress": {
          const step = event.progress?.step ?? "";
          for (const item of stepItems.values()) item.classList.replace("active", "done");
          let item = stepItems.get(step);
          if (!item) {
            item = el("li", "step", STEP_LABELS[step] ?? step);
            item.dataset.step = step;
            stepItems.set(step, item);
            steps.append(item);
          }
          item.classList.remove("done");
          item.classList.add("active");
          steps.scrollLeft = steps.scrollWidth;
          if (event.progress?.message) item.title = event.progress.message;
          if (!text.textContent) setStatus(event.progress?.message || STEP_LABELS[step] || step, "pending");
          break;
        }
        case "token":
          if (!text.textContent) setStatus("");
          text.textContent += event.content;
          break;
        case "reset":
          // The server will send a fresh copy of this answer: drop what is shown.
          text.textContent = "";
          break;
        case "snapshot": {
          const last = event.messages?.at(-1);
          if (last?.role === "assistant") text.textContent = last.content;
          break;
        }
        case "reconnecting":
          setStatus("Reconnecting…", "warning");
          element.classList.add("reconnecting");
          break;
        case "reconnected":
          setStatus("");
          element.classList.remove("reconnecting");
          break;
        case "end":
          element.classList.remove("reconnecting");
          text.textContent = event.content ?? text.textContent;
          for (const item of stepItems.values()) item.classList.replace("active", "done");
          collapseSteps();
          setStatus("");
          showCitations(event.citations);
          finish(event.finishReason, event.usage);
          setState(event.finishReason === "cancelled" ? "cancelled" : "complete");
          break;
        case "error":
          element.classList.remove("reconnecting");
          view.fail(event.error || "The answer could not be completed.");
          break;
        default:
          break;
      }
    },
  };
  return view;
}
