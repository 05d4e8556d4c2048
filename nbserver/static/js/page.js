// What every page does first: apply the interface language, then run the page's own setup.

import { showError } from "./dialog.js";
import { initI18n } from "./i18n.js";

export async function startPage(setup) {
  try {
    await initI18n();
  } catch (error) {
    console.error(error); // the server-rendered English stays
  }
  try {
    await setup();
  } catch (error) {
    showError(error, "error.load");
  } finally {
    document.documentElement.dataset.ready = "true";
  }
}
