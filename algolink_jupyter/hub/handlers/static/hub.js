// AlgoLink hub pages: checks as you type, and the service page's live status and log.
"use strict";
(function () {
  var RULES = {
    name: { re: /^[A-Za-z0-9_-]{1,64}$/, msg: "nameBad" },
    version: { re: /^[A-Za-z0-9.+-]{1,64}$/, msg: "versionBad" },
    port: { test: function (v) { return /^[0-9]+$/.test(v) && +v >= 1024 && +v <= 65535; },
            msg: "portBad" },
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

  document.querySelectorAll("form.try-form").forEach(function (form) {
    form.addEventListener("submit", function (e) {
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
  });

  var box = document.getElementById("service");
  if (!box) return;
  var labels = JSON.parse(box.dataset.labels || "{}");
  var status = document.getElementById("status");
  var publish = document.getElementById("publish");
  var log = document.getElementById("log");
  var settled = ["registered", "online", "failed", "offline"];
  function show(s) {
    status.className = "status status-" + s;
    status.textContent = labels[s] || s;
    publish.classList.toggle("online", s === "online");
  }
  function refreshLog() {
    if (!box.dataset.log || !log) return;
    fetch(box.dataset.log, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : "";
    }).then(function (text) {
      var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.textContent = text;
      if (atEnd) log.scrollTop = log.scrollHeight;
    }).catch(function () {});
  }
  function poll() {
    fetch(box.dataset.api, { credentials: "same-origin" }).then(function (r) {
      return r.json();
    }).then(function (svc) {
      show(svc.status);
      if (svc.urls && svc.urls.logs) box.dataset.log = svc.urls.logs;
      refreshLog();
      if (settled.indexOf(svc.status) < 0) setTimeout(poll, 1000);
    }).catch(function () { setTimeout(poll, 3000); });
  }
  refreshLog();
  if (settled.indexOf(status.className.replace("status status-", "")) < 0) poll();
  var forms = document.querySelectorAll("#service form");
  forms.forEach(function (f) {
    f.addEventListener("submit", function () { setTimeout(poll, 500); });
  });
})();
