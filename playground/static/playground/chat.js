// The playground chat: asks this server for canned answers and shows them, instrumented
// with the capture snippet. Answers are written with textContent only, never as HTML.
import { Gleaner } from "../gleaner/capture.js";

const chat = document.getElementById("chat");
const turns = document.getElementById("turns");
const template = document.getElementById("answer-template");
const form = document.getElementById("ask");
const input = document.getElementById("prompt");
const statusLine = document.getElementById("status");
const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;

Gleaner.attach({
  key: chat.dataset.key,
  endpoint: chat.dataset.endpoint,
  sessionId: chat.dataset.sessionId,
  userId: chat.dataset.userId,
  root: chat,
});

async function requestAnswer(body) {
  statusLine.textContent = "Thinking…";
  const response = await fetch(chat.dataset.answerUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
    body: JSON.stringify({ session_id: chat.dataset.sessionId, ...body }),
  });
  const data = await response.json();
  if (!response.ok) {
    statusLine.textContent = data.detail || "The model did not answer.";
    return null;
  }
  statusLine.textContent = "";
  return data;
}

function show(prompt, data) {
  const turn = template.content.firstElementChild.cloneNode(true);
  turn.querySelector(".prompt").textContent = prompt;
  fill(turn.querySelector(".answer"), data);
  turns.append(turn);
}

function fill(answer, data) {
  answer.dataset.gleanerGeneration = data.generation_id;
  answer.querySelector(".answer-text").textContent = data.output;
  const field = answer.querySelector("textarea");
  field.value = data.output;
  field.defaultValue = data.output;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const prompt = input.value;
  const data = await requestAnswer({ prompt });
  if (data) {
    show(prompt, data);
    input.value = "";
  }
});

turns.addEventListener("click", async (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  const answer = button.closest(".answer");
  const field = answer.querySelector("textarea");
  if (button.matches(".edit-toggle")) {
    const box = answer.querySelector(".edit");
    box.hidden = !box.hidden;
    if (!box.hidden) field.focus();
  } else if (button.matches("[data-gleaner-save]")) {
    answer.querySelector(".answer-text").textContent = field.value;
    answer.querySelector(".edit").hidden = true;
  } else if (button.matches("[data-gleaner-copy]")) {
    try {
      await navigator.clipboard.writeText(field.value);
      statusLine.textContent = "Copied.";
    } catch {
      statusLine.textContent = "Copy refused by the browser (the event was still recorded).";
    }
  } else if (button.matches("[data-gleaner-share]")) {
    statusLine.textContent = "Shared (pretend).";
  } else if (button.matches("[data-gleaner-regenerate]")) {
    // The snippet has recorded the regenerate click (capture phase); now the new answer
    // takes this one's place, and the server links it with `replaces`.
    const data = await requestAnswer({ replaces: answer.dataset.gleanerGeneration });
    if (!data) return;
    const next = answer.cloneNode(true);
    answer.classList.add("replaced");
    answer.querySelectorAll("button").forEach((b) => {
      b.disabled = true;
    });
    fill(next, data);
    next.querySelector(".edit").hidden = true;
    answer.after(next);
  }
});

function end(outcome) {
  Gleaner.end(outcome, { signal: `playground_end_${outcome}` });
  // Leaving the page sends the outcome and what is still queued (pagehide, sendBeacon).
  const url = new URL(chat.dataset.endedUrl, window.location.href);
  url.searchParams.set("session", chat.dataset.sessionId);
  window.location.assign(url.href);
}

document.getElementById("end-completed").addEventListener("click", () => end("completed"));
document.getElementById("end-abandoned").addEventListener("click", () => end("abandoned"));
