// The portal's little JavaScript: select all jobs, confirm destructive actions.
document.addEventListener('DOMContentLoaded', () => {
  const all = document.getElementById('select-all');
  if (all) {
    all.addEventListener('change', () => {
      document.querySelectorAll('input.job-select').forEach((box) => { box.checked = all.checked; });
    });
  }
  document.querySelectorAll('button[data-confirm]').forEach((button) => {
    button.addEventListener('click', (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });
});
