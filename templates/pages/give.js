{#- The form works without this: it names the gift on the button, keeps the typed amount and
    the buttons in agreement, and starts each frequency at its own suggested amount. Its
    comments are the template's, so that readers are not sent them. -#}
(function () {
  "use strict";
  var form = document.getElementById("give");
  if (!form) return;
  var typed = document.getElementById("amount-other");
  var other = document.getElementById("amount-choose-other");
  var button = document.getElementById("give-button");
  var neutral = button.textContent;
  function update() {
    var chosen = form.querySelector("[name=amount]:checked");
    var text = (typed.value.trim() || !chosen ? typed.value : chosen.value).trim().replace(/^£\s*/, "").replace(/,/g, "");
    var pounds = /^\d+(\.\d{1,2})?$/.test(text) ? Number(text) : 0;
    var monthly = form.querySelector("[name=frequency]:checked").value === "monthly";
    button.textContent = pounds > 0
      ? "Give £" + (pounds % 1 ? pounds.toFixed(2) : pounds.toLocaleString("en-GB")) + (monthly ? " every month" : " now")
      : neutral;
  }
  form.addEventListener("change", function (event) {
    var input = event.target;
    if (input.name === "frequency") {
      {#- Each frequency starts at its own suggested amount, unless the reader typed one. #}
      var own = form.querySelector("[data-default~=" + input.value + "]");
      if (own && !typed.value.trim()) own.checked = true;
    } else if (input.name === "amount" && input !== other) {
      typed.value = "";
    }
    update();
  });
  typed.addEventListener("input", function () {
    if (typed.value.trim()) other.checked = true;
    update();
  });
  update();
})();
