// k_client page: every action is one call to the portal's same-origin API;
// the portal forwards it to k_proxy and keeps the session token server-side.
'use strict';

const PENDING_CARD = 'Touch the card to approve…';
const DENIED = 'Login denied on the card — k_server was not called.';

const $ = (id) => document.getElementById(id);
const buttons = ['register', 'login', 'counter', 'logout', 'unregister'];

function setStatus(text, kind) {
  const el = $('status');
  el.textContent = text;
  el.className = kind || '';
}

function setBusy(busy) {
  for (const id of buttons) $(id).disabled = busy;
  document.body.dataset.busy = busy ? 'true' : 'false';
}

function username() {
  return $('username').value.trim();
}

async function api(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    return { status: 0, data: { error: 'portal_unreachable', message: String(e) } };
  }
  let data = {};
  try {
    data = await res.json();
  } catch (e) {
    data = { error: 'bad_answer', message: `HTTP ${res.status} without JSON` };
  }
  return { status: res.status, data };
}

function failure(action, r) {
  const d = r.data || {};
  return `${action} failed: ${d.message || 'HTTP ' + r.status} (${d.error || r.status})`;
}

async function refreshUsers() {
  const r = await api('GET', '/api/users');
  const list = $('users');
  list.replaceChildren();
  if (r.status !== 200) {
    $('users-empty').textContent = failure('Listing users', r);
    $('users-empty').hidden = false;
    return;
  }
  for (const u of r.data.users) {
    const li = document.createElement('li');
    li.textContent = u.username;
    li.dataset.username = u.username;
    li.setAttribute('data-testid', 'user');
    list.appendChild(li);
  }
  $('users-empty').textContent = 'No users registered.';
  $('users-empty').hidden = r.data.users.length > 0;
}

async function refreshSession() {
  const r = await api('GET', '/api/session');
  if (r.status === 200 && r.data.active) {
    $('session').textContent = `Logged in as ${r.data.username} (${r.data.auth_mode}).`;
  } else {
    $('session').textContent = 'Not logged in.';
  }
}

function needUser() {
  const u = username();
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(u)) {
    setStatus('Enter a username of 1 to 64 characters: A-Z a-z 0-9 . _ -', 'error');
    return null;
  }
  return u;
}

const actions = {
  async register() {
    const u = needUser();
    if (!u) return;
    setStatus(PENDING_CARD, 'pending');
    const r = await api('POST', '/api/register', { username: u });
    if (r.status === 201 || r.status === 200) setStatus(`Registered ${u}.`, 'ok');
    else setStatus(failure('Register', r), 'error');
    await refreshUsers();
  },
  async login() {
    const u = needUser();
    if (!u) return;
    setStatus(PENDING_CARD, 'pending');
    const r = await api('POST', '/api/login', { username: u });
    if (r.status === 200) {
      setStatus(`Logged in as ${r.data.username}: the card approved.`, 'ok');
    } else if (r.data && r.data.error === 'card_denied' && r.data.upstream_called === false) {
      setStatus(DENIED, 'error');
    } else {
      setStatus(failure('Login', r), 'error');
    }
    await refreshSession();
  },
  async counter() {
    setStatus('Calling the protected counter…', 'pending');
    const r = await api('POST', '/api/counter');
    if (r.status === 200) {
      $('counter-value').textContent = String(r.data.counter);
      setStatus(`Counter: ${r.data.counter}`, 'ok');
    } else {
      setStatus(failure('Counter', r), 'error');
    }
    await refreshSession();
  },
  async logout() {
    const r = await api('POST', '/api/logout');
    if (r.status === 200) setStatus(`Logged out ${r.data.username}.`, 'ok');
    else setStatus(failure('Logout', r), 'error');
    await refreshSession();
  },
  async unregister() {
    const u = needUser();
    if (!u) return;
    const r = await api('POST', '/api/unregister', { username: u });
    if (r.status === 200) setStatus(`Unregistered ${u}.`, 'ok');
    else setStatus(failure('Unregister', r), 'error');
    await refreshUsers();
    await refreshSession();
  },
};

for (const id of buttons) {
  $(id).addEventListener('click', async () => {
    setBusy(true);
    try {
      await actions[id]();
    } finally {
      setBusy(false);
    }
  });
}

setBusy(false);
refreshUsers();
refreshSession();
