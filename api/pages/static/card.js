// The card form (/family/card, and /family/enroll without a card on file): Stripe Elements collects the card in
// Stripe's own frame, confirmCardSetup checks it with the bank against the SetupIntent the server made, and only
// then does the form post the new PaymentMethod's id (never the card) to the server.
(function () {
  "use strict";
  var form = document.getElementById("card-form");
  if (!form) { return; }
  var status = document.getElementById("card-status");
  var button = form.querySelector("button[type=submit]");
  if (typeof Stripe === "undefined") {
    status.textContent = "The card form could not load. Check your connection and reload the page.";
    button.disabled = true;
    return;
  }
  var stripe = Stripe(form.getAttribute("data-stripe-key"));
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    status.textContent = "Checking the card with your bank…";
    stripe.confirmCardSetup(form.getAttribute("data-client-secret"), { payment_method: { card: card } })
      .then(function (result) {
        if (result.error || !result.setupIntent) {
          var message = (result.error && result.error.message) || "The card could not be checked.";
          status.textContent = message + " Try again or use another card.";
          button.disabled = false;
          return;
        }
        form.elements.payment_method_id.value = result.setupIntent.payment_method;
        status.textContent = "Card accepted. Saving…";
        form.submit();
      });
  });
})();
