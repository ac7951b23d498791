"""What an editor works with: new issues, builds, the check, the live preview, and a
new publication (`newsletter init`)."""
