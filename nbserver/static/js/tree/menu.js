// A drop-down menu: a button (aria-haspopup="menu") that opens and closes its .menu-items
// (role="menu"); a click outside the menu or Escape closes it. Used by the file browser's New menu
// and the notebook's File menu.

/** Wire `menu` (an element holding the button and the .menu-items); returns close(). */
export function dropdown(menu) {
  const button = menu.querySelector("[aria-haspopup=menu]");
  const items = menu.querySelector(".menu-items");
  const close = () => {
    items.hidden = true;
    button.setAttribute("aria-expanded", "false");
  };
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    items.hidden = !items.hidden;
    button.setAttribute("aria-expanded", String(!items.hidden));
  });
  document.addEventListener("click", (event) => {
    if (!menu.contains(event.target)) close();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });
  return close;
}
