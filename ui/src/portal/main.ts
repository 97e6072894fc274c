import '@fontsource-variable/inter';
import '$lib/tokens.css';
import '$lib/components.css';
import './portal.css';
import { mount } from 'svelte';
import Portal from './Portal.svelte';
import { HttpBackend } from './backend/http';
import { PortalState } from './state/portal.svelte';

const portal = new PortalState(new HttpBackend());
mount(Portal, { target: document.getElementById('portal')!, props: { portal } });
