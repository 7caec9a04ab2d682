// AlgoLink hub pages: checks as you type, and the service page's live status and log.
"use strict";
(function () {
  var RULES = {
    name: { re: /^[A-Za-z0-9_-]{1,64}$/, msg: "nameBad" },
    // a group (分组) name: letters of any language, digits, _ and - (the hub checks it again)
    group: { re: /^[\p{L}\p{M}\p{N}_-]{1,64}$/u, msg: "nameBad" },
    version: { re: /^[A-Za-z0-9.+-]{1,64}$/, msg: "versionBad" },
  };
  function check(input) {
    var rule = RULES[input.dataset.rule];
    var form = input.form;
    if (!rule || !form) return true;
    var ok = input.value === "" ? !input.required
      : rule.re ? rule.re.test(input.value) : rule.test(input.value);
    input.setCustomValidity(ok ? "" : form.dataset[rule.msg] || "invalid");
    input.classList.toggle("invalid", !ok);
    return ok;
  }
  document.addEventListener("input", function (e) {
    if (e.target.dataset && e.target.dataset.rule) check(e.target);
  });

  // Forms that delete ask first: a yes (data-confirm), or the name typed again (data-confirm-name).
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.dataset || !form.dataset.confirm) return;
    var field = form.querySelector("input[name=confirm]");
    if (form.dataset.confirmName) {
      var typed = window.prompt(form.dataset.confirm, "");
      if (typed === null || typed.trim() !== form.dataset.confirmName) { e.preventDefault(); return; }
      if (field) field.value = typed.trim();
    } else {
      if (!window.confirm(form.dataset.confirm)) { e.preventDefault(); return; }
      if (field) field.value = "1";
    }
  }, true);

  // "Try it": the command's answer shown under its form (bound once, for forms put there later too).
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.classList || !form.classList.contains("try-form")) return;
    e.preventDefault();
    var out = form.querySelector(".try-result");
    out.textContent = "…";
    var data = new FormData(form);
    form.querySelectorAll("input[type=checkbox]").forEach(function (c) {
      data.set(c.name, c.checked ? "true" : "false");
    });
    fetch(form.dataset.action, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-XSRFToken": form.dataset.xsrf },
    }).then(function (r) { return r.json(); }).then(function (answer) {
      out.textContent = "";
      Object.keys(answer).forEach(function (key) {
        var row = document.createElement("div");
        row.className = "try-output" + (key === "error" ? " error" : "");
        var label = document.createElement("strong");
        label.textContent = key + ": ";
        row.appendChild(label);
        var value = answer[key];
        if (typeof value === "string" && value.indexOf("data:image/") === 0) {
          var img = document.createElement("img");
          img.src = value;
          row.appendChild(img);
        } else {
          var span = document.createElement("span");
          span.className = "value";
          span.textContent = typeof value === "string" ? value : JSON.stringify(value);
          row.appendChild(span);
        }
        out.appendChild(row);
      });
    }).catch(function (err) { out.textContent = String(err); });
  });

  // The model card editor: the description's preview, sanitised by the hub as the page is.
  document.querySelectorAll("textarea[data-preview]").forEach(function (area) {
    var out = document.getElementById(area.dataset.preview);
    var timer = null;
    function render() {
      var body = new URLSearchParams();
      body.set("text", area.value);
      body.set("_xsrf", area.form.querySelector("input[name=_xsrf]").value);
      fetch("/preview", { method: "POST", body: body, credentials: "same-origin" }).then(function (r) {
        return r.ok ? r.text() : "";
      }).then(function (html) { out.innerHTML = html; }).catch(function () {});
    }
    area.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(render, 250); });
    render();
  });

  var box = document.getElementById("service");
  if (!box) return;
  // The service page shows one state: the hub's. The API's "state" digest changes with anything
  // the page shows; then the page is fetched again and every part of it replaced at once (the log
  // keeps streaming, a form being filled in is left alone).
  var settled = ["registered", "online", "failed", "offline", "development"];
  var PARTS = ["head", "metadata", "api-panel", "try", "options", "versions", "delete-service"];
  var log = document.getElementById("log");
  var streaming = null;

  function busy(svc) {
    return settled.indexOf(svc.status) < 0 || (svc.versions || []).some(function (v) {
      return v.status === "building" || v.status === "starting" ||
        v.process === "starting" || v.process === "restarting";
    });
  }
  function editing(part) {
    var active = document.activeElement;
    if (part.id === "options") {
      var save = document.getElementById("options-save");
      if (save && save.disabled) return true; // an upload is running
    }
    if (!active || !part.contains(active)) return false;
    return active.tagName === "INPUT" || active.tagName === "SELECT" || active.tagName === "TEXTAREA";
  }
  function replaceParts(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    var next = fresh.getElementById("service");
    if (!next) return;
    PARTS.forEach(function (id) {
      var old = document.getElementById(id);
      var neu = fresh.getElementById(id);
      if (old && neu) {
        if (id === "try" && old.dataset.commands === neu.dataset.commands) return;
        if (editing(old)) return;
        old.replaceWith(document.importNode(neu, true));
      } else if (old && !neu) {
        old.remove();
      }
    });
    var select = document.getElementById("log-version");
    var freshSelect = fresh.getElementById("log-version");
    var switchTo = next.dataset.logNumber !== box.dataset.logNumber ? next.dataset.logNumber : null;
    if (select && freshSelect) {
      var chosen = switchTo || select.value;
      select.innerHTML = freshSelect.innerHTML;
      select.value = chosen;
    } else if (!select && freshSelect) {
      var panel = document.getElementById("log-panel");
      if (panel) panel.insertBefore(document.importNode(freshSelect.parentNode, true), log);
    }
    box.dataset.state = next.dataset.state;
    box.dataset.logNumber = next.dataset.logNumber;
    document.dispatchEvent(new Event("algolink:replaced"));
    if (switchTo) streamSelected();
  }

  // The build and run log of the version chosen, live: ?follow=1 streams it as it is written.
  function append(text) {
    if (!text) return;
    var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(document.createTextNode(text));
    if (atEnd) log.scrollTop = log.scrollHeight;
  }
  function selectedLog() {
    var select = document.getElementById("log-version");
    if (!select || !select.selectedOptions.length) return null;
    return select.selectedOptions[0].dataset.url;
  }
  function stream(url) {
    if (!url || !log) return;
    var mine = {};
    streaming = mine;
    var live = window.ReadableStream && window.TextDecoder;
    var sep = url.indexOf("?") < 0 ? "?" : "&";
    log.textContent = "";
    log.dataset.url = url;
    fetch(live ? url + sep + "follow=1" : url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok || streaming !== mine) return;
      log.dataset.streaming = live ? "1" : "0";
      if (!live || !r.body) {
        return r.text().then(function (text) { if (streaming === mine) append(text); });
      }
      var reader = r.body.getReader();
      var decoder = new TextDecoder();
      function pump() {
        return reader.read().then(function (chunk) {
          if (streaming !== mine) { reader.cancel(); return; }
          if (chunk.done) {
            append(decoder.decode());
            log.dataset.streaming = "0";
            streaming = null;
            return;
          }
          append(decoder.decode(chunk.value, { stream: true }));
          return pump();
        });
      }
      return pump();
    }).catch(function () { if (streaming === mine) streaming = null; });
  }
  function streamSelected() { stream(selectedLog()); }
  document.addEventListener("change", function (e) {
    if (e.target && e.target.id === "log-version") streamSelected();
  });

  var timer = null;
  function poll(soon) {
    clearTimeout(timer);
    timer = setTimeout(refresh, soon || 0);
  }
  function refresh() {
    if (document.hidden) { poll(4000); return; }
    fetch(box.dataset.api, { credentials: "same-origin" }).then(function (r) {
      return r.json();
    }).then(function (svc) {
      var again = busy(svc) ? 1000 : 4000;
      if (svc.state && svc.state !== box.dataset.state) {
        return fetch(window.location.pathname, { credentials: "same-origin" }).then(function (r) {
          return r.ok ? r.text() : "";
        }).then(function (html) {
          if (html) replaceParts(html);
          if (!streaming && busy(svc)) streamSelected();
          poll(again);
        });
      }
      if (!streaming && busy(svc)) streamSelected();
      poll(again);
    }).catch(function () { poll(5000); });
  }
  streamSelected();
  poll(500);
})();
