# mmdebstrap customize hook ("$1" is the root file system): the package
# created a cluster 15/main we never use; the entrypoint runs initdb itself.
rm -rf "$1"/var/lib/postgresql/15/main "$1"/etc/postgresql/15/main
