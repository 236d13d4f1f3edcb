// "Go back" returns to where the user came from when the browser remembers it.
document.addEventListener("click", function (event) {
  var target = event.target.closest('[data-action="back"]');
  if (target && window.history.length > 1) {
    event.preventDefault();
    window.history.back();
  }
});
