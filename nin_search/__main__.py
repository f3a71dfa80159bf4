from nin_search.cli import main

main()
