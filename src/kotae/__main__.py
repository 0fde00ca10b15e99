from kotae.cli import main

main()
