// Asks before a form whose posting costs or ends something (a feature's fee, cancelling a
// number) is sent: the question is the form's data-confirm attribute, so no script is written
// into a page, and the Content-Security-Policy runs none that is.
document.addEventListener("submit", function (event) {
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});
