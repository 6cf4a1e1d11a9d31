from comfygen.cli import main

main()
