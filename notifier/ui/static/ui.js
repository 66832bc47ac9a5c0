// notifier's few lines of JavaScript: the pages work without it; this updates them in place.
"use strict";
(function () {
  const form = document.getElementById("notification-form");

  // The create form: show the chosen event's filter and the chosen method's fields only.
  function syncForm() {
    if (!form) return;
    const event = form.querySelector("#event");
    const option = event && event.tagName === "SELECT" ? event.selectedOptions[0] : event;
    const kind = option ? option.dataset.kind : "";
    form.querySelectorAll(".filter-field").forEach(function (el) {
      el.hidden = el.dataset.kinds !== kind;
    });
    const method = form.querySelector("#method").value;
    form.querySelectorAll(".method-fields").forEach(function (el) {
      el.hidden = el.dataset.method !== method;
    });
  }
  if (form) {
    form.addEventListener("change", function (e) {
      if (e.target.id === "event" || e.target.id === "method") syncForm();
    });
    syncForm();
  }

  function csrf() {
    const field = document.querySelector("input[name=csrf_token]");
    return field ? field.value : "";
  }

  // The webhook body preview: the server renders the template with the sample event.
  const previewButton = document.getElementById("preview-button");
  if (previewButton && form) {
    previewButton.addEventListener("click", function () {
      const body = new URLSearchParams({
        csrf_token: csrf(), event: form.querySelector("#event").value,
        repository: form.querySelector("input[name=repository]").value,
        template: form.querySelector("textarea[name='webhook.template']").value,
      });
      fetch(form.dataset.previewUrl, {method: "POST", body: body, credentials: "same-origin"})
        .then(function (r) { return r.text(); })
        .then(function (html) { document.getElementById("preview").innerHTML = html; });
    });
  }

  // The e-mail address's confirmation state, until it is confirmed.
  const emailState = document.getElementById("email-state");
  if (emailState && form) {
    const poll = function () {
      const input = form.querySelector("input[name='email.email']");
      const state = emailState.querySelector("[data-state]");
      if (!input || !input.value || (state && state.dataset.state !== "waiting")) return;
      fetch(form.dataset.emailUrl + "?address=" + encodeURIComponent(input.value),
            {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) { if (html) emailState.innerHTML = html; });
    };
    setInterval(poll, 2000);
  }

  // A row whose test result is not final yet: fetch the row again until it is.
  function pollRow(row, left) {
    if (!row.dataset.poll || left <= 0) return;
    setTimeout(function () {
      fetch(row.dataset.poll, {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          const holder = document.createElement("tbody");
          holder.innerHTML = html.trim();
          const fresh = holder.firstElementChild;
          row.replaceWith(fresh);
          pollRow(fresh, left - 1);
        });
    }, 1000);
  }
  document.querySelectorAll("tr[data-poll]").forEach(function (row) { pollRow(row, 60); });

  // Copy buttons.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      const source = document.querySelector(button.dataset.copy);
      source.select();
      const done = function () { button.textContent = "Copied"; };
      if (navigator.clipboard) navigator.clipboard.writeText(source.value).then(done, function () {
        document.execCommand("copy"); done();
      });
      else { document.execCommand("copy"); done(); }
    });
  });

  // The bell closes with Escape.
  const bell = document.getElementById("bell");
  if (bell) {
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && bell.open) { bell.open = false; bell.querySelector("summary").focus(); }
    });
  }
})();
