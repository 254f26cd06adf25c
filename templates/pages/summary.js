{#- GOV.UK's error summary: it takes the focus, and each of its links moves the focus to its field. -#}
(function () {
  var summary = document.getElementById("error-summary");
  if (!summary) return;
  summary.focus();
  summary.addEventListener("click", function (event) {
    var href = event.target.getAttribute && event.target.getAttribute("href");
    var field = href && document.getElementById(href.slice(1));
    if (!field) return;
    event.preventDefault();
    field.focus();
    field.scrollIntoView({ block: "center" });
  });
})();
