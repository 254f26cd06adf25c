/* The coopfund ticker: fills every <div data-coopfund-fund> with the fund's figures and keeps
   them live. Without JavaScript the div keeps what the host page put in it (a Donate link). */
(function (CSS) {
  "use strict";
  var hosts = document.querySelectorAll("[data-coopfund-fund]");
  if (!hosts.length) return;
  // Loaded from the fund's site by another site's page, or inline in the fund's own widget page.
  var script = document.currentScript;
  var base = script && script.src ? script.src.replace(/\/widget\/fund\.js(\?.*)?$/, "") : "";

  if (!document.getElementById("coopfund-style")) {
    var style = document.createElement("style");
    style.id = "coopfund-style";
    style.textContent = CSS;
    document.head.appendChild(style);
  }

  function add(parent, tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    parent.appendChild(node);
    return node;
  }

  // The same markup as templates/widget/ticker.html, for hosts that do not have it yet.
  function build(host) {
    var box = document.createElement("div");
    box.className = "coopfund";
    box.setAttribute("role", "group");
    var line = add(box, "p", "coopfund-line");
    var raised = add(line, "span", "", "You've raised ");
    add(raised, "strong").setAttribute("data-coopfund", "raised");
    line.appendChild(document.createTextNode(" "));
    var remaining = add(line, "span", "", "We need ");
    add(remaining, "strong").setAttribute("data-coopfund", "remaining");
    add(add(box, "div", "coopfund-bar"), "span").setAttribute("data-coopfund", "bar");
    var foot = add(box, "p", "coopfund-foot");
    add(foot, "span").setAttribute("data-coopfund", "when");
    foot.appendChild(document.createTextNode(" "));
    var donate = add(foot, "a", "coopfund-donate", "Donate today");
    donate.href = (base || location.origin) + "/#donate";
    host.textContent = "";
    host.appendChild(box);
  }

  function render(p) {
    // The summary ends with the same words the ticker shows: "…, 13 days remaining".
    var when = p.summary.slice(p.summary.lastIndexOf(", ") + 2);
    var percent = Math.max(0, Math.min(100, Math.floor((p.raised_pence * 100) / Math.max(1, p.target_pence))));
    Array.prototype.forEach.call(hosts, function (host) {
      if (!host.querySelector(".coopfund")) build(host);
      host.querySelector('[data-coopfund="raised"]').textContent = p.raised;
      host.querySelector('[data-coopfund="remaining"]').textContent = p.remaining;
      host.querySelector('[data-coopfund="when"]').textContent = when;
      host.querySelector('[data-coopfund="bar"]').style.width = percent + "%";
      host.querySelector(".coopfund").setAttribute("aria-label", p.title + ": " + p.summary);
    });
  }

  function show(json) {
    try {
      render(JSON.parse(json));
    } catch (e) {
      /* a figure we cannot read leaves the last good one in place */
    }
  }

  // Framed (the widget page itself), it tells the host page its height, so that the frame
  // fits it at any width; the README's snippet listens for this message.
  if (!base && window.parent !== window) {
    var post = function () {
      window.parent.postMessage({ coopfund: "height", height: Math.ceil(document.body.getBoundingClientRect().height) }, "*");
    };
    post();
    if (window.ResizeObserver) new ResizeObserver(post).observe(document.body);
    else window.addEventListener("resize", post);
  }

  if (window.EventSource) {
    // The stream sends the current figures first, then every change; EventSource reconnects itself.
    new EventSource(base + "/api/campaigns/current/events").addEventListener("progress", function (event) {
      show(event.data);
    });
  } else if (window.fetch) {
    fetch(base + "/api/campaigns/current").then(function (r) { return r.text(); }).then(show);
  }
})(__CSS__);
