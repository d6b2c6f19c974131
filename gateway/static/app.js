// The chat page: sessions on the left, the conversation on the right, answers streamed through
// chatstream.js. Everything the server sends is put on the page as text, never as HTML.
import { ChatstreamClient, ChatstreamError } from "./chatstream.js";
import { STEP_LABELS, renderMessage, timeAgo } from "./render.js";

const KEY_STORAGE = "chatstream.apiKey";
const SIMPLE_STORAGE = "chatstream.simpleLanguage";
const PROJECT_STORAGE = "chatstream.project";
const RECENT_PROJECTS_STORAGE = "chatstream.recentProjects";
const RECENT_PROJECTS_KEPT = 8;

const $ = (id) => document.getElementById(id);
const ui = {
  app: $("app"),
  sidebar: $("sidebar"),
  scrim: $("scrim"),
  sessions: $("sessions"),
  sessionsEmpty: $("sessions-empty"),
  sessionsError: $("sessions-error"),
  title: $("title"),
  thread: $("thread"),
  empty: $("empty"),
  messages: $("messages"),
  composer: $("composer"),
  prompt: $("prompt"),
  send: $("send"),
  simple: $("simple-language"),
  project: $("project"),
  projectStatus: $("project-status"),
  recentProjects: $("recent-projects"),
  keyDialog: $("key-dialog"),
  keyForm: $("key-form"),
  keyInput: $("api-key"),
  keyError: $("key-error"),
  keyLabel: $("key-label"),
};

const state = {
  sessions: [],
  sessionId: null,
  stream: null,
};

const client = new ChatstreamClient({ getToken: () => localStorage.getItem(KEY_STORAGE) });

// ---- the API key -------------------------------------------------------------------------

function askForKey(message = "") {
  ui.keyInput.value = localStorage.getItem(KEY_STORAGE) ?? "";
  $("forget-key").hidden = !ui.keyInput.value;
  ui.keyError.textContent = message;
  ui.keyError.hidden = !message;
  if (!ui.keyDialog.open) ui.keyDialog.showModal();
  ui.keyInput.focus();
}

function showKeyLabel() {
  const key = localStorage.getItem(KEY_STORAGE);
  ui.keyLabel.textContent = key ? `API key ••••${key.slice(-4)}` : "Set an API key";
}

ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = ui.keyInput.value.trim();
  if (!key) return;
  localStorage.setItem(KEY_STORAGE, key);
  ui.keyDialog.close();
  showKeyLabel();
  loadSessions({ openLatest: state.sessionId === null });
  checkProject();
});

$("forget-key").addEventListener("click", () => {
  localStorage.removeItem(KEY_STORAGE);
  ui.keyInput.value = "";
  $("forget-key").hidden = true;
  showKeyLabel();
});

$("change-key").addEventListener("click", () => askForKey());

/** A 401 anywhere means the key is wrong: ask again, in place of a generic error. */
function handleAuth(error) {
  if (error instanceof ChatstreamError && error.status === 401) {
    askForKey("That key was not accepted. Check it and try again.");
    return true;
  }
  return false;
}

// ---- sessions ----------------------------------------------------------------------------

async function loadSessions({ openLatest = false } = {}) {
  try {
    const { sessions } = await client.listSessions({ limit: 50 });
    state.sessions = sessions;
    ui.sessionsError.hidden = true;
    renderSessions();
    if (openLatest && sessions.length > 0 && state.sessionId === null) await openSession(sessions[0].id);
  } catch (error) {
    if (handleAuth(error)) return;
    ui.sessionsError.textContent = `Could not load conversations: ${error.message}`;
    ui.sessionsError.hidden = false;
  }
}

function renderSessions() {
  ui.sessions.replaceChildren(
    ...state.sessions.map((session) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "session";
      button.dataset.id = session.id;
      if (session.id === state.sessionId) button.setAttribute("aria-current", "true");
      const title = document.createElement("span");
      title.className = "session-title";
      title.textContent = session.title;
      const meta = document.createElement("span");
      meta.className = "session-meta";
      const count = session.messageCount;
      meta.textContent = `${timeAgo(session.updatedAt)} · ${count} message${count === 1 ? "" : "s"}`;
      button.append(title, meta);
      button.addEventListener("click", () => {
        closeSidebar();
        openSession(session.id);
      });
      item.append(button);
      return item;
    }),
  );
  ui.sessionsEmpty.hidden = state.sessions.length > 0;
}

async function openSession(id) {
  if (state.stream) return;
  state.sessionId = id;
  const session = state.sessions.find((s) => s.id === id);
  ui.title.textContent = session?.title ?? "Conversation";
  renderSessions();
  ui.messages.replaceChildren();
  try {
    const messages = await client.listMessages(id);
    if (state.sessionId !== id) return;
    for (const message of messages) {
      const view = renderMessage(message);
      ui.messages.append(view.element);
      // An answer still being written when the page was opened: attach to its stream.
      if (message.role === "assistant" && message.status === "streaming" && message.jobId) {
        view.reset();
        follow(client.resume(message.jobId, { lastEventId: 0 }), view);
      }
    }
  } catch (error) {
    if (handleAuth(error)) return;
    const view = renderMessage({ role: "assistant", content: "" });
    view.fail(`Could not load this conversation: ${error.message}`);
    ui.messages.append(view.element);
  }
  showThread();
  scrollToEnd(true);
}

function newConversation() {
  if (state.stream) return;
  state.sessionId = null;
  ui.title.textContent = "New conversation";
  ui.messages.replaceChildren();
  renderSessions();
  showThread();
  closeSidebar();
  ui.prompt.focus();
}

$("new-chat").addEventListener("click", newConversation);

// ---- sending and streaming ---------------------------------------------------------------

function showThread() {
  ui.empty.hidden = ui.messages.childElementCount > 0;
}

function scrollToEnd(force = false) {
  const nearEnd = ui.thread.scrollHeight - ui.thread.scrollTop - ui.thread.clientHeight < 120;
  if (force || nearEnd) ui.thread.scrollTop = ui.thread.scrollHeight;
}

function setStreaming(stream) {
  state.stream = stream;
  const busy = stream !== null;
  ui.app.classList.toggle("is-streaming", busy);
  ui.send.setAttribute("aria-label", busy ? "Stop" : "Send");
  ui.send.classList.toggle("stop", busy);
}

async function send(text) {
  const content = text.trim();
  if (!content || state.stream) return;
  if (!localStorage.getItem(KEY_STORAGE)) {
    askForKey();
    return;
  }
  ui.prompt.value = "";
  autosize();
  ui.messages.append(renderMessage({ role: "user", content }).element);
  const view = renderMessage({ role: "assistant", content: "", status: "streaming" });
  ui.messages.append(view.element);
  showThread();
  scrollToEnd(true);
  setStreaming({ cancel: () => {} });
  try {
    if (state.sessionId === null) {
      const session = await client.createSession({ title: content.slice(0, 80) });
      state.sessionId = session.id;
      ui.title.textContent = session.title;
      state.sessions = [session, ...state.sessions.filter((s) => s.id !== session.id)];
      renderSessions();
    }
    const project = chosenProject();
    const options = { simpleLanguage: ui.simple.checked };
    const stream = project
      ? client.projectChat(project, content, { ...options, sessionId: state.sessionId })
      : client.sendMessage(state.sessionId, content, options);
    if (project) rememberProject(project);
    await follow(stream, view);
  } catch (error) {
    if (!handleAuth(error)) view.fail(error.message);
    setStreaming(null);
  }
}

/** Show one answer's stream in its message view until it ends. */
async function follow(stream, view) {
  setStreaming(stream);
  try {
    for await (const event of stream) {
      view.apply(event);
      scrollToEnd();
    }
  } catch (error) {
    if (!handleAuth(error)) view.fail(error instanceof ChatstreamError ? error.message : `${error.message}`);
  } finally {
    setStreaming(null);
    loadSessions();
  }
}

async function stop() {
  const stream = state.stream;
  if (!stream) return;
  ui.send.disabled = true;
  try {
    await stream.cancel();
  } catch {
    // The cancel route could not be reached: at least stop reading here.
    stream.abort?.();
  } finally {
    ui.send.disabled = false;
  }
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  if (state.stream) stop();
  else send(ui.prompt.value);
});

ui.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    if (!state.stream) send(ui.prompt.value);
  }
});

function autosize() {
  ui.prompt.style.height = "auto";
  ui.prompt.style.height = `${Math.min(ui.prompt.scrollHeight, 200)}px`;
}
ui.prompt.addEventListener("input", autosize);

for (const button of document.querySelectorAll("#suggestions button")) {
  button.addEventListener("click", () => send(button.textContent));
}

// ---- the project picker -------------------------------------------------------------------
// The API lists a project's documents but not the projects themselves, so the picker is a text
// field that remembers the projects asked before and says, from the API, what a name holds.

const chosenProject = () => ui.project.value.trim();

function recentProjects() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_PROJECTS_STORAGE) ?? "[]");
    return Array.isArray(list) ? list.filter((name) => typeof name === "string") : [];
  } catch {
    return [];
  }
}

function showRecentProjects() {
  ui.recentProjects.replaceChildren(
    ...recentProjects().map((name) => {
      const option = document.createElement("option");
      option.value = name;
      return option;
    }),
  );
}

function rememberProject(name) {
  const list = [name, ...recentProjects().filter((other) => other !== name)].slice(0, RECENT_PROJECTS_KEPT);
  localStorage.setItem(RECENT_PROJECTS_STORAGE, JSON.stringify(list));
  showRecentProjects();
}

let projectCheck = 0;

/** Say what the chosen project holds: its number of documents, or that it cannot be read. */
async function checkProject() {
  const project = chosenProject();
  localStorage.setItem(PROJECT_STORAGE, project);
  const check = ++projectCheck;
  const say = (text, kind = "") => {
    if (check !== projectCheck) return;
    ui.projectStatus.textContent = text;
    ui.projectStatus.className = `project-status ${kind}`.trim();
  };
  if (!project) return say("");
  if (!localStorage.getItem(KEY_STORAGE)) return say("");
  say("Checking…");
  try {
    const documents = await client.listDocuments(project);
    say(`${documents.length} document${documents.length === 1 ? "" : "s"}`);
  } catch (error) {
    if (error instanceof ChatstreamError && error.status === 404) say("No such project", "warning");
    else if (!handleAuth(error)) say(`Could not check: ${error.message}`, "warning");
  }
}

ui.project.value = localStorage.getItem(PROJECT_STORAGE) ?? "";
ui.project.addEventListener("change", checkProject);
// Enter in the field picks the project; it must not submit the composer (which stops a stream).
ui.project.addEventListener("keydown", (event) => {
  if (event.key !== "Enter") return;
  event.preventDefault();
  checkProject();
});
showRecentProjects();

// ---- the simple-language switch and the phone drawer --------------------------------------

ui.simple.checked = localStorage.getItem(SIMPLE_STORAGE) === "true";
ui.simple.addEventListener("change", () => localStorage.setItem(SIMPLE_STORAGE, String(ui.simple.checked)));

function closeSidebar() {
  ui.app.classList.remove("sidebar-open");
  ui.scrim.hidden = true;
}
$("open-sidebar").addEventListener("click", () => {
  ui.app.classList.add("sidebar-open");
  ui.scrim.hidden = false;
});
$("close-sidebar").addEventListener("click", closeSidebar);
ui.scrim.addEventListener("click", closeSidebar);

// ---- start -------------------------------------------------------------------------------

showKeyLabel();
showThread();
if (localStorage.getItem(KEY_STORAGE)) {
  loadSessions({ openLatest: true });
  checkProject();
} else askForKey();

// For people reading the page's state from the console or a test.
window.chatstream = { client, state, STEP_LABELS };
