// Every sentence the parents' portal shows, in UK English, in one place so a translation can be
// added beside it. Error codes map to sentences a parent can act on.

export const t = {
  appName: 'Sprig',
  tagline: "Your child's learning journal",
  signInTitle: 'Sign in',
  email: 'E-mail address',
  password: 'Password',
  signIn: 'Sign in',
  signingIn: 'Signing in…',
  signOut: 'Sign out',
  agreementTitle: 'Before you start',
  agreementIntro: 'Please read the setting’s agreement. You can use the journal once you have accepted it.',
  accept: 'I agree',
  consentTitle: 'Photo consent',
  consentQuestion: (name: string) =>
    `May ${name}’s photo appear in other children’s learning journals (for example in a group photo)?`,
  consentHint: 'You can change your answer later. Staff will not share group photos of your child with other families if you say no.',
  yes: 'Yes, that’s fine',
  no: 'No',
  journalTitle: (name: string) => `${name}’s journal`,
  empty: 'Nothing has been shared yet. New observations appear here once staff publish them.',
  more: 'Show older entries',
  by: (author: string) => `by ${author}`,
  nextStep: 'Next step',
  group: 'Group observation',
  photoHidden: 'A photo of this group activity is not shown.',
  photoAlt: (name: string, date: string) => `Photo from an observation of ${name} on ${date}`,
  replies: 'Replies',
  replyLabel: 'Reply to this observation',
  replySend: 'Send reply',
  replySent: 'Reply sent.',
  childPicker: 'Child',
  loading: 'Loading…',
  consoleTitle: 'Manager’s console',
  consoleFailed: 'The console could not be loaded. Check the connection, then reload the page.',
  account: 'Your account',
  back: 'Back to the journal',
  consentNow: (name: string, answer: boolean | null | undefined) =>
    `${name}: ${answer === true ? 'photos may appear in other children’s journals' : answer === false ? 'photos must not appear in other children’s journals' : 'not answered yet'}`,
  consentChanged: 'Your answer has been saved.',
  sessionsTitle: 'Where you are signed in',
  sessionThis: 'This device',
  sessionSince: (date: string) => `Signed in ${date}`,
  sessionEnd: 'Sign out there',
  sessionEndThis: 'Sign out here',
  share: 'Share from home',
  shareTitle: (name: string) => `Share from home: ${name}`,
  shareIntro: 'Tell staff what your child has been doing at home. They look at it first; once they approve it, it appears in the journal.',
  shareText: 'What happened?',
  shareFiles: 'Photos and videos (optional)',
  shareFilesHint: 'Up to 10 photos (JPEG, PNG) or short videos (MP4, MOV, WebM). Location and camera details are removed from photos.',
  shareSend: 'Send to staff',
  shareSending: 'Sending…',
  shareProgress: 'Upload progress',
  shareSent: 'Thank you. Staff will look at it soon.',
  shareEmpty: 'Write something or add a photo or video first.',
  shareTooMany: 'Choose at most 10 photos and videos.',
  shareRemove: (name: string) => `Remove ${name}`,
  sharedTitle: 'What you have shared',
  sharedNone: 'Nothing yet. What you send appears here, with what staff decided.',
  status: { pending: 'Waiting for staff', approved: 'In the journal', rejected: 'Not added' } as Record<string, string>,
  reason: 'Reason',
  sharedPhotoAlt: (date: string) => `Your photo from ${date}`,
  // Two-step sign-in (TOTP).
  mfaTitle: 'Enter your code',
  mfaIntro: 'Open your authenticator app and enter the 6-digit code it shows for Sprig.',
  code: '6-digit code',
  mfaContinue: 'Continue',
  checking: 'Checking…',
  backToSignIn: 'Back to sign in',
  useRecovery: 'Use a recovery code instead',
  useAppCode: 'Use a code from the app instead',
  recoveryCode: 'Recovery code',
  recoveryHint:
    'One of the recovery codes you saved when two-step sign-in was set up, such as 3f7k-9q2m; each works once. No recovery codes? Ask the setting to turn two-step sign-in off for you.',
  setupTitle: 'Set up two-step sign-in',
  setupIntro:
    'Managers sign in with a password and a 6-digit code from an authenticator app on their phone (for example Google Authenticator, Microsoft Authenticator or 2FAS), every time.',
  recoveryTitle: 'Your recovery codes',
  recoveryIntro:
    'If you lose your phone, each of these codes signs you in once instead of a code from the app. Write them down or keep them in a password manager now: they are not shown again.',
  recoverySaved: 'I have saved these',
  securityTitle: 'Two-step sign-in',
  totpOffIntro:
    'Add a second step to signing in: after your password, a 6-digit code from an authenticator app on your phone (for example Google Authenticator, Microsoft Authenticator or 2FAS). Someone who learns your password still cannot sign in.',
  totpTurnOn: 'Turn on two-step sign-in',
  totpScan: '1. Scan this QR code with your authenticator app.',
  totpQrAlt: 'QR code for adding Sprig to an authenticator app',
  totpOrType: 'Or type this key into the app:',
  totpConfirmIntro: '2. Enter the 6-digit code the app now shows.',
  totpConfirm: 'Turn on',
  totpCancel: 'Cancel',
  totpOnIntro: 'On: signing in asks for a code from your authenticator app.',
  totpOffLabel: 'To turn it off, enter a current code from the app.',
  totpTurnOff: 'Turn off',
  totpNowOn: 'Two-step sign-in is on. Next time you sign in, have your phone ready.',
  totpNowOff: 'Two-step sign-in is off.',
  // Invitations.
  inviteTitle: 'Choose your password',
  inviteWelcome: (name: string) => `Welcome, ${name}. You have been invited to your child’s learning journal.`,
  inviteEmail: (email: string) => `You will sign in with ${email}.`,
  inviteRule:
    'Use at least 12 characters. A few unrelated words (such as “tulip kettle orbit”) are easy to remember and hard to guess. You can paste one from a password manager. Very common passwords are refused.',
  newPassword: 'New password',
  showPassword: 'Show password',
  passwordCount: (n: number) => (n >= 12 ? `${n} characters` : `${n} of at least 12 characters`),
  setPassword: 'Set password',
  saving: 'Saving…',
  inviteGoneTitle: 'This link no longer works',
  inviteGone: 'This invitation link has been used or has expired. If you have already set your password, sign in. Otherwise ask the setting for a new link.',
  passwordSet: 'Your password is set. Sign in with your e-mail address and new password.',
};

export const areaNames: Record<string, string> = {
  'communication-and-language': 'Communication and language',
  'physical-development': 'Physical development',
  'personal-social-emotional': 'Personal, social and emotional',
  literacy: 'Literacy',
  mathematics: 'Mathematics',
  'understanding-the-world': 'Understanding the world',
  'expressive-arts-and-design': 'Expressive arts and design',
};

export const errors: Record<string, string> = {
  wrong_credentials: 'That e-mail address and password do not match. Check them and try again.',
  locked: 'Too many wrong passwords or codes. For your safety this account is locked for 15 minutes.',
  wrong_code: 'That code is not right. Enter the 6-digit code your authenticator app shows now.',
  code_used: 'That code has just been used. Wait for the next code in your app, then enter it.',
  password_too_short: 'Choose a password of at least 12 characters; a few unrelated words are easy to remember.',
  password_too_common: 'This password is too common: attackers try it first. Choose another, such as a few unrelated words.',
  cross_origin: 'The request was refused. Reload the page and try again.',
  agreement_changed: 'The agreement has just changed. Please read it again.',
  signed_out: 'You have been signed out. Please sign in again.',
  bad_request: 'That could not be sent. Check it and try again.',
  // Upload refusals (too_large, unsupported_type, damaged_file, …) show the server's own
  // sentence, which names the limit or the format.
  offline: 'You seem to be offline. Nothing was sent: connect to the internet and try again.',
  too_many_streams: 'This page is open in many tabs. Close some to keep live updates.',
};

export function errorText(code: string, fallback: string): string {
  return errors[code] ?? fallback;
}

export function formatDate(ms: number): string {
  return new Date(ms).toLocaleDateString('en-GB', { day: 'numeric', month: 'long', year: 'numeric' });
}
