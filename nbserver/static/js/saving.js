// Saving a document (a notebook or a text file) through the contents API: the dirty marker, the
// "last saved" time, Ctrl-S, autosave, a check that the file did not change on disk since it was
// loaded, and leaving the page with unsaved changes.

import { contents } from "./api.js";
import { confirmDialog, showError, toast } from "./dialog.js";
import { $ } from "./dom.js";
import { formatTime, t } from "./i18n.js";

export const AUTOSAVE_MS = 120_000;

export class Saver {
  /**
   * `path`: the file; `model()`: the model to PUT ({type, format, content}); `checkpoint`: whether a
   * manual save also creates a checkpoint (notebooks do, as in Jupyter).
   */
  constructor(path, model, { checkpoint = false } = {}) {
    this.path = path;
    this.model = model;
    this.checkpoint = checkpoint;
    this.dirty = false;
    this.saving = null;
    this.lastModified = null; // the file's last_modified as of our last load or save
    window.addEventListener("beforeunload", (event) => {
      if (this.dirty) event.preventDefault();
    });
    window.addEventListener("nbserver:language", () => this.showSaved());
  }

  /** Record the model just loaded from the server. */
  loaded(model) {
    this.lastModified = model.last_modified;
    this.setDirty(false);
    this.showSaved();
  }

  setDirty(dirty) {
    this.dirty = dirty;
    $("#dirty").hidden = !dirty;
  }

  showSaved() {
    const label = $("#last-saved");
    if (!label || !this.lastModified) return;
    label.textContent = t("save.lastSaved", { time: formatTime(this.lastModified) });
    label.title = this.lastModified;
  }

  showSaving() {
    const label = $("#last-saved");
    if (label) label.textContent = t("save.saving");
  }

  /** Save now; `manual` saves also checkpoint. Resolves to whether the file was saved. */
  async save({ manual = true } = {}) {
    if (this.saving) return this.saving;
    this.saving = this.doSave(manual).finally(() => {
      this.saving = null;
    });
    return this.saving;
  }

  async doSave(manual) {
    const model = this.model(); // what is on screen now; later edits belong to the next save
    const wasDirty = this.dirty;
    this.setDirty(false); // an edit made while saving marks it dirty again
    const failed = (error) => {
      if (wasDirty && !this.dirty) this.setDirty(true);
      this.showSaved();
      if (error) showError(error, "save.failed");
      return false;
    };
    this.showSaving();
    try {
      const current = await contents.get(this.path, { content: "0" });
      if (this.lastModified && current.last_modified !== this.lastModified) {
        if (!manual) return failed(null); // never overwrite someone else's change unasked
        const overwrite = await confirmDialog(t("save.changedOnDisk"), { okKey: "save.overwrite", danger: true });
        if (!overwrite) return failed(null);
      }
    } catch (error) {
      if (error.status !== 404) return failed(error); // 404: deleted meanwhile, saving recreates it
    }
    try {
      const saved = await contents.save(this.path, model);
      this.lastModified = saved.last_modified;
      if (manual && this.checkpoint) await contents.createCheckpoint(this.path);
      this.showSaved();
      if (saved.message) toast(saved.message);
      return true;
    } catch (error) {
      return failed(error);
    }
  }

  /** Autosave every AUTOSAVE_MS while there are changes, and Ctrl-S / Cmd-S to save. */
  start() {
    setInterval(() => {
      if (this.dirty) this.save({ manual: false });
    }, AUTOSAVE_MS);
    document.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "s") {
        event.preventDefault();
        this.save();
      }
    });
  }
}
