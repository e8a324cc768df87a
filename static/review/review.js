// Keyboard shortcuts and timing for the review work page.
//
// The page works without this file (plain forms, post/redirect/get); this adds:
// number keys pick options, Enter submits, S skips, Backspace goes back to the item answered
// before (the page's "Previous" link), G opens the guidelines, ? the help;
// the seconds spent on an item go into the form's hidden field; focus moves to each new
// item after htmx swaps it in.
(function () {
  "use strict";

  let shownAt = performance.now();
  let shownItem = ""; // the heading of the item being timed

  const work = () => document.getElementById("work");
  const answerForm = () => document.getElementById("answer-form");
  const skipForm = () => document.getElementById("skip-form");

  function isTyping(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    if (el.tagName !== "INPUT") return false;
    return !["radio", "checkbox", "button", "submit", "reset", "hidden"].includes(el.type);
  }

  // The question number keys act on: the one holding focus, else the first unanswered
  // (when changing earlier answers, all answered: the first question).
  function keyedGroup() {
    const form = answerForm();
    if (!form || form.hasAttribute("data-locked")) return null;
    const focused = document.activeElement && document.activeElement.closest("fieldset[data-keyed]");
    if (focused && form.contains(focused)) return focused;
    const groups = Array.from(form.querySelectorAll("fieldset[data-keyed]"));
    const open = groups.find((g) => !g.querySelector("input:checked"));
    return open || (form.hasAttribute("data-changing") ? groups[0] || null : null);
  }

  function markCurrent() {
    const form = answerForm();
    if (!form) return;
    const current = keyedGroup();
    form.querySelectorAll("fieldset[data-keyed]").forEach((g) => {
      g.classList.toggle("current", g === current);
    });
  }

  function pick(key) {
    const group = keyedGroup();
    if (!group) return false;
    const radio = group.querySelector(`input[type=radio][data-key="${key}"]`);
    if (!radio) return false;
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
    if (group.contains(document.activeElement)) radio.focus();
    markCurrent();
    return true;
  }

  function toggleHelp(force) {
    const panel = document.getElementById("shortcuts");
    const button = document.getElementById("help-toggle");
    if (!panel) return;
    const show = force === undefined ? panel.hidden : force;
    panel.hidden = !show;
    if (button) button.setAttribute("aria-expanded", String(show));
  }

  function toggleGuidelines() {
    const details = document.getElementById("guidelines");
    if (details) details.open = !details.open;
  }

  document.addEventListener("keydown", (event) => {
    // A held-down key repeats: never let that submit or skip item after item.
    if (event.defaultPrevented || event.isComposing || event.repeat) return;
    const target = event.target;
    const typing = isTyping(target);
    const plain = !event.ctrlKey && !event.metaKey && !event.altKey;

    if (event.key === "Enter") {
      const form = answerForm();
      if (!form || form.hasAttribute("data-locked")) return;
      const inTextarea = target.tagName === "TEXTAREA";
      if (inTextarea && !(event.ctrlKey || event.metaKey)) return; // a new line
      if (!inTextarea && !plain) return;
      if (target.closest("button, a, summary, select")) return; // their own Enter
      if (target.closest("form") && target.closest("form") !== form) return;
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (event.key === "Escape") {
      if (typing) target.blur();
      toggleHelp(false);
      return;
    }
    if (typing || !plain) return;

    if (/^[0-9]$/.test(event.key)) {
      if (pick(event.key)) event.preventDefault();
    } else if (event.key === "s" || event.key === "S") {
      const form = skipForm();
      if (form) {
        event.preventDefault();
        form.requestSubmit();
      }
    } else if (event.key === "Backspace") {
      const previous = document.querySelector("a[data-previous]");
      if (previous) {
        event.preventDefault();
        previous.click();
      }
    } else if (event.key === "?") {
      event.preventDefault();
      toggleHelp();
    } else if (event.key === "g" || event.key === "G") {
      event.preventDefault();
      toggleGuidelines();
    }
  });

  // Capture phase: runs before htmx reads the form, with or without htmx.
  document.addEventListener(
    "submit",
    (event) => {
      const field = event.target.querySelector("[data-seconds-spent]");
      if (field) field.value = ((performance.now() - shownAt) / 1000).toFixed(1);
    },
    true,
  );

  document.addEventListener("change", markCurrent);
  document.addEventListener("focusin", markCurrent);

  document.addEventListener("click", (event) => {
    if (event.target.closest("#help-toggle")) toggleHelp();
  });

  function showClientError(text) {
    const box = document.getElementById("client-error");
    if (!box) return;
    box.textContent = text;
    box.hidden = !text;
  }

  // A session that expired answers with the login page: go there instead of swapping it in.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const xhr = event.detail.xhr;
    const login = document.body.dataset.loginUrl;
    if (login && xhr.responseURL && new URL(xhr.responseURL).pathname === login) {
      event.detail.shouldSwap = false;
      window.location.assign(`${login}?next=${encodeURIComponent(window.location.pathname)}`);
    }
  });

  document.addEventListener("htmx:responseError", (event) => {
    const status = event.detail.xhr.status;
    showClientError(`That did not work (HTTP ${status}). Reload the page and try again.`);
  });

  document.addEventListener("htmx:sendError", () => {
    showClientError("The server could not be reached. Check your connection and try again.");
  });

  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.detail.target !== work()) return;
    showClientError("");
    const status = event.detail.xhr ? event.detail.xhr.status : 200;
    const heading = document.getElementById("item-heading");
    const shown = heading ? heading.textContent : "";
    if (status === 400) {
      // The same item with errors: keep timing it, go to the first field to fix (an
      // answer, the skip reason or the flag's reason).
      const invalid = work().querySelector('[aria-invalid="true"]');
      if (invalid) invalid.focus();
    } else {
      // Still the same item (flagged, say): keep timing it.
      if (shown !== shownItem) shownAt = performance.now();
      if (heading) heading.focus({ preventScroll: true });
      window.scrollTo({ top: 0 });
    }
    shownItem = shown;
    markCurrent();
  });

  document.addEventListener("DOMContentLoaded", () => {
    const heading = document.getElementById("item-heading");
    shownItem = heading ? heading.textContent : "";
    markCurrent();
  });
})();
