// Progressive touches only: every page works without this file.
"use strict";
document.addEventListener("keydown", (event) => {
  // "/" jumps to the page's first filter or entry field, as in many consoles.
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
  const field = document.querySelector("main form input:not([type=hidden]), main form select");
  if (field) { event.preventDefault(); field.focus(); }
});
document.addEventListener("submit", (event) => {
  // A form that removes something asks first.
  const button = event.submitter;
  const question = button && button.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});
