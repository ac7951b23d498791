"""The web archive (`publish`: a page per issue, an index, an Atom feed) and the export
of an issue as a blog post."""
