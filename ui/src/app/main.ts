import '@fontsource-variable/inter';
import '$lib/tokens.css';
import '$lib/components.css';
import { mount } from 'svelte';
import App from './App.svelte';
import { TauriBackend } from './backend/tauri';
import { AppState } from './state/app.svelte';

const state = new AppState(new TauriBackend());
mount(App, { target: document.getElementById("app")!, props: { app: state } });
