// Gleaner capture snippet: behavioural events from a chat UI, sent with a publishable key.
//
// Usage (docs/capture.md):
//   <script type="module" src="https://gleaner.example/static/gleaner/capture.js"
//           data-key="glpub_..." data-endpoint="https://gleaner.example/api/v1/events"
//           data-session-id="..." data-user-id="..."></script>
// or, from a module: import { Gleaner } from ".../capture.js"; Gleaner.attach({...}).
//
// Contract: the snippet only reads the page (attributes, selections, form values) and never
// writes text into it, so it adds no XSS surface; it logs nothing; its one global is
// `window.Gleaner`. Answers are elements marked data-gleaner-generation="<generation id>".

const BATCH_SIZE = 20;
const FLUSH_MS = 2000;
const DWELL_REPORT_MS = 15000;
const MIN_DWELL_MS = 100; // a glance while scrolling past is not reading
const MAX_QUEUE = 1000;
// sendBeacon and keepalive fetches share a 64 kB budget, so one event must fit in one:
// 16,000 UTF-16 units are at most 48 kB of UTF-8.
const BEACON_BYTES = 60000;
const MAX_TEXT_CHARS = 16000;
const COPY_DEDUPE_MS = 1000;

const ANSWER = "[data-gleaner-generation]";

function randomSuffix() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

let lastMillis = 0;
let sequence = 0;

// Time-ordered: milliseconds (base 36, fixed width) and a counter sort in creation order;
// the random suffix keeps two tabs' ids apart.
function eventId() {
  const now = Date.now();
  sequence = now === lastMillis ? sequence + 1 : 0;
  lastMillis = now;
  const time = now.toString(36).padStart(9, "0");
  return `ev_${time}${sequence.toString(36).padStart(3, "0")}_${randomSuffix()}`;
}

function sessionIdDefault() {
  try {
    let id = sessionStorage.getItem("gleaner.session");
    if (!id) {
      id = `s_${Date.now().toString(36)}_${randomSuffix()}`;
      sessionStorage.setItem("gleaner.session", id);
    }
    return id;
  } catch {
    return `s_${Date.now().toString(36)}_${randomSuffix()}`;
  }
}

function byteLength(text) {
  return new TextEncoder().encode(text).length;
}

function clip(text) {
  return text.length > MAX_TEXT_CHARS ? text.slice(0, MAX_TEXT_CHARS) : text;
}

function generationOf(element, attribute) {
  const named = attribute && element.getAttribute(attribute);
  if (named) return named;
  const answer = element.closest(ANSWER);
  return answer ? answer.getAttribute("data-gleaner-generation") : null;
}

function editValue(field) {
  if ("value" in field && typeof field.value === "string") return field.value;
  return field.innerText ?? field.textContent ?? "";
}

function answerText(answer) {
  const marked = answer.querySelector("[data-gleaner-text]");
  const edit = answer.querySelector("[data-gleaner-edit]");
  if (edit) return editValue(edit);
  return (marked || answer).innerText ?? "";
}

class Tracker {
  constructor(options) {
    if (!options || !options.key) throw new Error("Gleaner.attach: 'key' is required.");
    this.key = options.key;
    this.endpoint = new URL(
      options.endpoint || new URL("/api/v1/events", import.meta.url).href,
      document.baseURI,
    ).href;
    this.sessionId = options.sessionId || sessionIdDefault();
    this.userId = options.userId || null;
    this.root = options.root || document;
    this.queue = [];
    this.retried = new WeakSet(); // events sent once already and failed
    this.timer = null;
    this.outcome = null;
    this.lastCopy = new Map(); // generation id -> time of its last copy event
    this.edits = new WeakMap(); // edit field -> text last reported (or first seen)
    this.dwell = new Map(); // answer element -> {generation, visible, since, pending}
    this.focused = document.hasFocus();
    this.listeners = [];
    this.observeAnswers();
    this.listen();
    this.reportTimer = setInterval(() => this.reportDwell(false), DWELL_REPORT_MS);
  }

  // --- Events -----------------------------------------------------------------------------

  record(type, generationId, fields) {
    if (this.detached) return;
    const event = {
      id: eventId(),
      type,
      timestamp: new Date().toISOString(),
      session_id: this.sessionId,
      ...fields,
    };
    if (this.userId) event.user_id = this.userId;
    if (generationId) event.generation_id = generationId;
    if (this.queue.length >= MAX_QUEUE) this.queue.shift();
    this.queue.push(event);
    if (this.queue.length >= BATCH_SIZE) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), FLUSH_MS);
  }

  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    while (this.queue.length) {
      const batch = this.queue.splice(0, BATCH_SIZE);
      const body = JSON.stringify({ events: batch });
      fetch(this.endpoint, {
        method: "POST",
        keepalive: byteLength(body) < BEACON_BYTES,
        headers: { Authorization: `Bearer ${this.key}`, "Content-Type": "application/json" },
        body,
      }).then(
        (response) => {
          // Busy or briefly down: try again later. Ids make a replay a duplicate, never a
          // second event. Any other answer (200, 207, 4xx) is final.
          if (response.status === 429 || response.status >= 500) this.requeue(batch);
        },
        () => this.requeue(batch),
      );
    }
  }

  // Each event is sent again once; one that failed twice is dropped (the page must not pile
  // up events for a server that stays away).
  requeue(batch) {
    if (this.detached) return;
    const again = batch.filter((event) => !this.retried.has(event));
    again.forEach((event) => this.retried.add(event));
    this.queue.unshift(...again.slice(0, MAX_QUEUE - this.queue.length));
    if (this.queue.length && !this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS * 5);
    }
  }

  // The page is going away: everything left goes with sendBeacon, which survives unload but
  // cannot set headers, so the key travels in the query and the body is text/plain JSON.
  beaconAll() {
    clearTimeout(this.timer);
    this.timer = null;
    const url = `${this.endpoint}${this.endpoint.includes("?") ? "&" : "?"}key=${encodeURIComponent(this.key)}`;
    let batch = [];
    const send = () => {
      if (!batch.length) return;
      const body = JSON.stringify({ events: batch });
      const blob = new Blob([body], { type: "text/plain" });
      if (!navigator.sendBeacon || !navigator.sendBeacon(url, blob)) {
        fetch(url, { method: "POST", keepalive: true, body: blob }).catch(() => {});
      }
      batch = [];
    };
    let size = 0;
    for (const event of this.queue.splice(0)) {
      const length = byteLength(JSON.stringify(event));
      if (batch.length && (size + length > BEACON_BYTES || batch.length >= BATCH_SIZE)) {
        send();
        size = 0;
      }
      batch.push(event);
      size += length;
    }
    send();
  }

  // --- Reading time -----------------------------------------------------------------------

  observeAnswers() {
    this.intersections = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          const state = this.dwell.get(entry.target);
          if (!state) continue;
          state.visible = entry.isIntersecting;
          if (entry.isIntersecting) {
            if (this.reading()) state.since ??= performance.now();
          } else {
            this.stopClock(state);
            this.reportOne(state);
          }
        }
      },
      { threshold: 0.5 },
    );
    const track = (element) => {
      if (this.dwell.has(element)) return;
      const generation = element.getAttribute("data-gleaner-generation");
      if (!generation) return;
      this.dwell.set(element, { generation, visible: false, since: null, pending: 0 });
      this.intersections.observe(element);
    };
    const scan = (node) => {
      if (node.nodeType !== Node.ELEMENT_NODE) return;
      if (node.matches(ANSWER)) track(node);
      node.querySelectorAll(ANSWER).forEach(track);
    };
    scan(this.root.nodeType === Node.DOCUMENT_NODE ? this.root.documentElement : this.root);
    const forget = (node) => {
      if (node.nodeType !== Node.ELEMENT_NODE) return;
      const answers = [...node.querySelectorAll(ANSWER)];
      if (node.matches(ANSWER)) answers.push(node);
      for (const element of answers) {
        const state = this.dwell.get(element);
        if (!state || element.isConnected) continue;
        this.stopClock(state);
        this.reportOne(state);
        this.intersections.unobserve(element);
        this.dwell.delete(element);
      }
    };
    // Chat UIs add answers as they arrive, and drop them.
    this.mutations = new MutationObserver((records) => {
      for (const record of records) {
        record.removedNodes.forEach(forget);
        record.addedNodes.forEach(scan);
      }
    });
    this.mutations.observe(this.root, { childList: true, subtree: true });
  }

  reading() {
    return document.visibilityState === "visible" && this.focused;
  }

  stopClock(state) {
    if (state.since !== null) {
      state.pending += performance.now() - state.since;
      state.since = null;
    }
  }

  startClocks() {
    if (!this.reading()) return;
    for (const state of this.dwell.values()) {
      if (state.visible) state.since ??= performance.now();
    }
  }

  reportOne(state) {
    if (state.pending >= MIN_DWELL_MS) {
      this.record("view", state.generation, { dwell_ms: Math.round(state.pending) });
      state.pending = 0;
    }
  }

  // Sends the reading time so far of every answer; `pausing` stops the clocks (page hidden).
  reportDwell(pausing) {
    for (const state of this.dwell.values()) {
      this.stopClock(state);
      this.reportOne(state);
    }
    if (!pausing) this.startClocks();
  }

  // --- Page listeners ---------------------------------------------------------------------

  on(target, type, handler, options) {
    const wrapped = (event) => {
      try {
        handler(event);
      } catch {
        // Capture must never break the page or write to its console.
      }
    };
    target.addEventListener(type, wrapped, options);
    this.listeners.push([target, type, wrapped, options]);
  }

  listen() {
    const root = this.root;
    this.on(root, "click", (event) => this.onClick(event), true);
    this.on(root, "focusout", (event) => this.onEditDone(event.target), true);
    this.on(root, "focusin", (event) => this.onEditStart(event.target), true);
    this.on(document, "copy", () => this.onCopySelection(), true);
    this.on(window, "focus", () => {
      this.focused = true;
      this.startClocks();
    });
    this.on(window, "blur", () => {
      this.focused = false;
      this.reportDwell(true);
    });
    this.on(document, "visibilitychange", () => {
      if (document.visibilityState === "visible") {
        this.startClocks();
      } else {
        // A hidden tab may be frozen or killed without a pagehide (phones): send now.
        this.reportDwell(true);
        this.beaconAll();
      }
    });
    this.on(window, "pagehide", () => {
      this.reportDwell(true);
      if (this.outcome) {
        this.record("session_outcome", null, this.outcome);
        this.outcome = null;
      }
      this.beaconAll();
    });
  }

  onClick(event) {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    const control = target.closest(
      "[data-gleaner-copy],[data-gleaner-share],[data-gleaner-regenerate],[data-gleaner-save]",
    );
    if (!control) return;
    if (control.hasAttribute("data-gleaner-copy")) {
      const generation = generationOf(control, "data-gleaner-copy");
      const answer = control.closest(ANSWER);
      if (generation) this.copy(generation, answer ? answerText(answer) : null);
    } else if (control.hasAttribute("data-gleaner-share")) {
      const generation = generationOf(control, "data-gleaner-share");
      if (generation) this.record("share", generation, {});
    } else if (control.hasAttribute("data-gleaner-regenerate")) {
      const generation = generationOf(control, "data-gleaner-regenerate");
      if (generation) this.record("regenerate", generation, {});
    } else {
      const answer = control.closest(ANSWER);
      const field = answer && answer.querySelector("[data-gleaner-edit]");
      if (field) this.onEditDone(field);
    }
  }

  copy(generation, text) {
    const now = performance.now();
    // A copy button that copies through a selection fires the page's copy event as well.
    if (now - (this.lastCopy.get(generation) ?? -Infinity) < COPY_DEDUPE_MS) return;
    this.lastCopy.set(generation, now);
    this.record("copy", generation, text === null ? {} : { text: clip(text) });
  }

  onCopySelection() {
    // Text selected inside a textarea or input is not part of the document's selection.
    const active = document.activeElement;
    if (active && typeof active.selectionStart === "number" && active.closest(ANSWER)) {
      const text = active.value.slice(active.selectionStart, active.selectionEnd);
      this.copySelected(active.closest(ANSWER), text);
      return;
    }
    const selection = document.getSelection();
    if (!selection || selection.isCollapsed) return;
    const node = selection.anchorNode;
    const element = node && (node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement);
    const answer = element && element.closest(ANSWER);
    if (answer) this.copySelected(answer, selection.toString());
  }

  copySelected(answer, text) {
    if (text && this.root.contains(answer)) {
      this.copy(answer.getAttribute("data-gleaner-generation"), text);
    }
  }

  onEditStart(target) {
    const field = target instanceof Element && target.closest("[data-gleaner-edit]");
    if (field && !this.edits.has(field)) this.edits.set(field, editValue(field));
  }

  onEditDone(target) {
    const field = target instanceof Element && target.closest("[data-gleaner-edit]");
    if (!field) return;
    const generation = generationOf(field, "data-gleaner-edit");
    if (!generation) return;
    const text = editValue(field);
    // Never focused: compare with the text the page rendered.
    const before = this.edits.has(field)
      ? this.edits.get(field)
      : (field.defaultValue ?? text);
    this.edits.set(field, text);
    if (text !== before) this.record("edit", generation, { text: clip(text) });
  }

  // --- Public -----------------------------------------------------------------------------

  end(outcome, options = {}) {
    if (outcome !== "completed" && outcome !== "abandoned") {
      throw new Error("Gleaner.end: outcome must be 'completed' or 'abandoned'.");
    }
    this.outcome = { outcome };
    if (options.signal) this.outcome.signal = String(options.signal);
  }

  detach() {
    this.reportDwell(true);
    this.flush();
    this.detached = true;
    clearInterval(this.reportTimer);
    this.intersections.disconnect();
    this.mutations.disconnect();
    for (const [target, type, handler, options] of this.listeners) {
      target.removeEventListener(type, handler, options);
    }
  }
}

let current = null;

export const Gleaner = Object.freeze({
  /** Start capturing: {key, endpoint?, sessionId?, userId?, root?}. Replaces an earlier one. */
  attach(options) {
    if (current) current.detach();
    current = new Tracker(options);
    return current.sessionId;
  },
  /** The session's outcome, sent when the page goes away ("completed" or "abandoned"). */
  end(outcome, options) {
    if (current) current.end(outcome, options);
  },
  /** Send what is queued now (the snippet also does this every 2 s and on pagehide). */
  flush() {
    if (current) {
      current.reportDwell(false);
      current.flush();
    }
  },
  detach() {
    if (current) current.detach();
    current = null;
  },
  get sessionId() {
    return current ? current.sessionId : null;
  },
});

window.Gleaner = Gleaner;

// <script type="module" src=".../capture.js" data-key="glpub_..."> attaches by itself.
// (A module has no document.currentScript: find the tag that loaded this file.)
for (const script of document.querySelectorAll("script[src][data-key]")) {
  if (script.src === import.meta.url && script.dataset.key) {
    Gleaner.attach({
      key: script.dataset.key,
      endpoint: script.dataset.endpoint,
      sessionId: script.dataset.sessionId,
      userId: script.dataset.userId,
    });
    break;
  }
}
